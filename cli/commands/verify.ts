import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_FILE, loadIndex } from '../../core/index-format.js';
import { dot } from '../../core/linalg.js';
import { openEngine } from '../../engine/node.js';
import { modelJsonSha256, openImageEncoder, readModelInfo } from '../../models/load-model.js';
import { parse, UsageError, type Command } from '../args.js';

export const verify: Command = {
  name: 'verify',
  summary: 'check an index: schema, sizes and the sha256 of every blob',
  usage: `nameonly verify <index-dir> [--model <model-dir>]

Exit 0 and a one-line summary when the index is intact; exit 1 with the reason otherwise.
With --model, also checks that the index was built for that model, that the engine's weights
match their sha256, and reports the engine's image_embeds cosine to onnxruntime's fp32 graph
on a fixed test pattern (the Worker serves the engine; the fp32 graph is the reference).`,
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
      const sha = modelJsonSha256(values.model);
      if (sha !== index.manifest.model.modelJsonSha256) throw new Error(`index ${index.manifest.name} was built for model ${index.manifest.model.name} (${index.manifest.model.modelJsonSha256.slice(0, 12)}), not for ${values.model} (${sha.slice(0, 12)})`);
    }
    const m = index.manifest;
    const tower = values.model ? `; ${await engineAgreement(values.model)}` : '';
    io.out(`ok: ${m.name} ${m.version}, ${m.counts.classes} classes, ${m.counts.support} support images, model ${m.model.name}${tower}`);
    return 0;
  },
};

/** The engine against onnxruntime-node's fp32 graph on one deterministic pattern. */
async function engineAgreement(modelDir: string): Promise<string> {
  const info = readModelInfo(modelDir);
  const S = info.imageSize;
  const pixels = Float32Array.from({ length: 3 * S * S }, (_, i) => Math.sin(i * 0.37) * 1.5 + Math.cos(i * 0.011) * 0.3);
  const engine = await openEngine(modelDir, info);
  const fp32 = await openImageEncoder(modelDir);
  const a = (await engine.encode(pixels, ['image_embeds'])).imageEmbeds!, b = (await fp32.encode(pixels, ['image_embeds'])).imageEmbeds!;
  await fp32.release();
  const cosine = dot(a, 0, b, 0, a.length) / Math.sqrt(dot(a, 0, a, 0, a.length) * dot(b, 0, b, 0, b.length));
  return `image tower: int8 engine (${engine.kernel} kernel) vs onnxruntime fp32, image_embeds cosine ${cosine.toFixed(5)}`;
}
