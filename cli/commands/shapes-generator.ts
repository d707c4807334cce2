import { startGeneratorServer } from '../../eval/generator-server.js';
import { RENDER_STYLES, type RenderStyle } from '../../eval/shapes-world.js';
import { parse, positiveInt, UsageError, type Command } from '../args.js';

export const shapesGenerator: Command = {
  name: 'shapes-generator',
  summary: 'serve the shapes-world renderer as a text-to-image generator (for --generator)',
  usage: `nameonly shapes-generator [--port 8788] [--style world|flat]

Listens on 127.0.0.1 and answers POST {prompt, seed, width, height} with a PNG of the
shapes world ("A photo of a red star." draws a red star); 422 for prompts it cannot draw.
--style flat: the earlier, off-domain look (saturated backgrounds, no rotation, other
proportions), to test what off-domain support sets do.`,
  async run(argv, io) {
    const { values } = parse(argv, { port: { type: 'string', short: 'p' }, style: { type: 'string' } });
    const style = values.style ?? 'world';
    if (!(RENDER_STYLES as readonly string[]).includes(style)) throw new UsageError(`--style must be ${RENDER_STYLES.join(' or ')}`);
    const { url } = await startGeneratorServer(positiveInt(values.port, '--port', 8788), '127.0.0.1', style as RenderStyle);
    io.err(`shapes generator listening: --generator ${url}`);
    await new Promise(() => {}); // until interrupted
    return 0;
  },
};
