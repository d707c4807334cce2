import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_FILE, loadIndex } from '../../core/index-format.js';
import { parse, UsageError, type Command } from '../args.js';

export const verify: Command = {
  name: 'verify',
  summary: 'check an index: schema, sizes and the sha256 of every blob',
  usage: `nameonly verify <index-dir> [--model <model-dir>]

Exit 0 and a one-line summary when the index is intact; exit 1 with the reason otherwise.
With --model, also checks that the index was built for that model.`,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { model: { type: 'string', short: 'm' } }, true);
    if (positionals.length !== 1) throw new UsageError('expected exactly one <index-dir>');
    const dir = positionals[0]!;
    let manifest: unknown, data: Uint8Array;
    try {
      manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      data = readFileSync(join(dir, DATA_FILE));
    } catch (e) {
      throw new Error(`${dir} is not a readable index: ${(e as Error).message}`);
    }
    const index = await loadIndex(manifest, data);
    if (values.model) {
      const { createHash } = await import('node:crypto');
      const sha = createHash('sha256').update(readFileSync(join(values.model, 'model.json'))).digest('hex');
      if (sha !== index.manifest.model.modelJsonSha256) throw new Error(`index ${index.manifest.name} was built for model ${index.manifest.model.name} (${index.manifest.model.modelJsonSha256.slice(0, 12)}), not for ${values.model} (${sha.slice(0, 12)})`);
    }
    const m = index.manifest;
    io.out(`ok: ${m.name} ${m.version}, ${m.counts.classes} classes, ${m.counts.support} support images, model ${m.model.name}`);
    return 0;
  },
};
