import { TINY_VARIANTS, writeTinyCheckpoint, type TinyVariant } from '../../models/tiny-checkpoints.js';
import { parse, required, UsageError, type Command } from '../args.js';

export const tinyCheckpoint: Command = {
  name: 'tiny-checkpoint',
  summary: 'write a small seeded CLIP checkpoint in the Hugging Face layout (tests, benchmarks)',
  usage: `nameonly tiny-checkpoint <variant> --out <checkpoint-dir>

Variants: ${Object.keys(TINY_VARIANTS).join(', ')}.
Weights are random but deterministic; the vocabulary is CLIP's real BPE vocabulary.`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' } }, true);
    const variant = positionals[0] as TinyVariant | undefined;
    if (!variant || !(variant in TINY_VARIANTS)) throw new UsageError(`choose a variant: ${Object.keys(TINY_VARIANTS).join(', ')}`);
    const out = required(values.out, '--out');
    writeTinyCheckpoint(TINY_VARIANTS[variant], out);
    io.err(`wrote ${variant} to ${out}`);
    return 0;
  },
};
