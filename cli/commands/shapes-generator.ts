import { startGeneratorServer } from '../../eval/generator-server.js';
import { parse, positiveInt, type Command } from '../args.js';

export const shapesGenerator: Command = {
  name: 'shapes-generator',
  summary: 'serve the shapes-world renderer as a text-to-image generator (for --generator)',
  usage: `nameonly shapes-generator [--port 8788]

Listens on 127.0.0.1 and answers POST {prompt, seed, width, height} with a PNG of the
shapes world ("A photo of a red star." draws a red star); 422 for prompts it cannot draw.`,
  async run(argv, io) {
    const { values } = parse(argv, { port: { type: 'string', short: 'p' } });
    const { url } = await startGeneratorServer(positiveInt(values.port, '--port', 8788));
    io.err(`shapes generator listening: --generator ${url}`);
    await new Promise(() => {}); // until interrupted
    return 0;
  },
};
