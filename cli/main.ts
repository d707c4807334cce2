// `nameonly <command>`: one entry for every tool of the product.
import { UsageError, type Command, type Io } from './args.js';
import { classify } from './commands/classify.js';
import { convert } from './commands/convert.js';
import { embed } from './commands/embed.js';
import { evaluate } from './commands/eval.js';
import { indexBuild } from './commands/index-build.js';
import { publishCommand } from './commands/publish.js';
import { shapesGenerator } from './commands/shapes-generator.js';
import { start } from './commands/start.js';
import { verify } from './commands/verify.js';
import { score } from './commands/score.js';
import { segment } from './commands/segment.js';
import { tinyCheckpoint } from './commands/tiny-checkpoint.js';
import { tokenize } from './commands/tokenize.js';
import { tune } from './commands/tune.js';

export const COMMANDS: Command[] = [start, convert, indexBuild, classify, segment, verify, publishCommand, tokenize, embed, score, tune, evaluate, shapesGenerator, tinyCheckpoint];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `nameonly: zero-shot image classification and segmentation from class names only

Usage: nameonly <command> [options]   (nameonly <command> --help for details)

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Exit codes: 0 success, 1 failure, 2 usage error.`;
}

const stdio: Io = { out: (t) => process.stdout.write(t + '\n'), err: (t) => process.stderr.write(t + '\n') };

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(overview());
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`nameonly: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`Usage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`nameonly ${name}: ${e.message}\nUsage: ${command.usage.split('\n')[0]}`);
      return 2;
    }
    io.err(`nameonly ${name}: ${(e as Error).message}`);
    return 1;
  }
}
