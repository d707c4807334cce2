import { readFileSync, writeFileSync, rmSync, existsSync, cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../models/checkpoint.js';
import { convertCheckpoint } from '../models/convert.js';
import { openImageEncoder, openTextEncoder, openTokenizer } from '../models/load-model.js';
import { ATTENTION_OUTPUT, ATTENTIONS } from '../core/encoders.js';
import { referenceText, referenceVision } from '../models/reference.js';
import { estimateWorkerHeap, WORKER_MEMORY_LIMIT } from '../core/model-info.js';
import { buildImageEncoder } from '../models/clip-graphs.js';
import { TINY_VARIANTS, visionCheckpoint } from '../models/tiny-checkpoints.js';
import { cosine, maxAbsDiff, tempDir, testPixels, tinyModel } from './helpers.js';

const VARIANTS = ['tiny-p16', 'tiny-p32-f16-legacy', 'tiny-p8-bf16'] as const;

describe.each(VARIANTS)('ONNX graphs of %s match the TypeScript reference forward', (variant) => {
  const { checkpointDir, modelDir } = tinyModel(variant);
  const ck = loadCheckpoint(checkpointDir);
  const S = ck.config.vision.imageSize;

  it('image_embeds and the patch tokens of every last block (plain, CSA, NACLIP, ClearCLIP) within 1e-4, batched', async () => {
    const encoder = await openImageEncoder(modelDir);
    const a = testPixels(3 * S * S, 1), b = testPixels(3 * S * S, 2);
    const both = new Float32Array(2 * 3 * S * S);
    both.set(a);
    both.set(b, a.length);
    const out = await encoder.encode(both, ['image_embeds', ...ATTENTIONS.map((k) => ATTENTION_OUTPUT[k].output)]);
    const D = ck.config.projectionDim, N = (S / ck.config.vision.patchSize) ** 2;
    const flat = (m: Float64Array[]) => m.flatMap((r) => [...r]);
    for (const [i, px] of [a, b].entries()) {
      const ref = referenceVision(ck, px);
      expect(maxAbsDiff(out.imageEmbeds!.subarray(i * D, (i + 1) * D), ref.imageEmbeds)).toBeLessThan(1e-4);
      for (const kind of ATTENTIONS) {
        const field = ATTENTION_OUTPUT[kind].field as 'patchEmbeds';
        expect(maxAbsDiff(out[field]!.subarray(i * N * D, (i + 1) * N * D), flat(ref[field]))).toBeLessThan(1e-4);
        // Each variant really changes the last block (otherwise the parity above proves nothing about it).
        if (kind !== 'vanilla') expect(maxAbsDiff(flat(ref.patchEmbeds), flat(ref[field]))).toBeGreaterThan(1e-2);
      }
    }
  });

  it('text_embeds within 1e-4, with EOT pooling of the config convention', async () => {
    const tokenizer = openTokenizer(modelDir);
    const encoder = await openTextEncoder(modelDir);
    const texts = ['a photo of a cat.', 'a red star on a striped background', 'x'];
    const ids = texts.map((t) => tokenizer.tokenize(t));
    const out = await encoder.encode(ids);
    const D = ck.config.projectionDim;
    ids.forEach((row, i) => expect(maxAbsDiff(out.subarray(i * D, (i + 1) * D), referenceText(ck, row))).toBeLessThan(1e-4));
  });

  it('uint8 image encoder stays within cosine 0.99 of fp32, and onnxruntime-node and WASM agree (cosine >= 0.999)', async () => {
    const px = testPixels(3 * S * S, 3);
    const fp32 = (await (await openImageEncoder(modelDir)).encode(px, ['image_embeds'])).imageEmbeds!;
    const nodeQ = (await (await openImageEncoder(modelDir, { quantized: true })).encode(px, ['image_embeds'])).imageEmbeds!;
    const wasmQ = (await (await openImageEncoder(modelDir, { quantized: true, runtime: 'wasm' })).encode(px, ['image_embeds'])).imageEmbeds!;
    expect(cosine(fp32, nodeQ)).toBeGreaterThanOrEqual(0.99);
    expect(cosine(nodeQ, wasmQ)).toBeGreaterThanOrEqual(0.999);
    expect(maxAbsDiff(fp32, nodeQ)).toBeGreaterThan(0); // it really is a different (quantised) graph
  });
});

describe('text pooling conventions differ as HF does', () => {
  it('legacy eos_token_id 2 pools at argmax(ids); new configs at the first eos', () => {
    // A row with a token id larger than EOT before the EOT: argmax pooling and first-eos pooling pick different positions.
    const legacy = loadCheckpoint(tinyModel('tiny-p32-f16-legacy').checkpointDir);
    const ids = [49406, 320, 49407, 0, ...new Array(73).fill(0)];
    const moved = [49406, 320, 49407, 49407, ...new Array(73).fill(0)];
    // argmax returns the first maximal index, so duplicates after EOT do not move the pooled token.
    expect(maxAbsDiff(referenceText(legacy, ids), referenceText(legacy, moved))).toBeLessThan(1e-9);
  });
});

describe('convert rejects broken checkpoint folders and writes nothing', () => {
  const good = tinyModel('tiny-p16').checkpointDir;

  function broken(mutate: (dir: string) => void): string {
    const dir = tempDir('broken');
    cpSync(good, dir, { recursive: true });
    mutate(dir);
    return dir;
  }

  const cases: [string, (dir: string) => void, RegExp][] = [
    ['missing weights', (d) => rmSync(join(d, 'model.safetensors')), /no model\.safetensors/],
    ['missing config', (d) => rmSync(join(d, 'config.json')), /no config\.json/],
    ['corrupt config.json', (d) => writeFileSync(join(d, 'config.json'), '{not json'), /cannot parse/],
    [
      'ResNet CLIP',
      (d) => {
        const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, architectures: ['CLIPModel'], vision_config: { ...cfg.vision_config, model_type: 'clip_resnet' } }));
      },
      /not a CLIP ViT/,
    ],
    ['other architecture', (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'siglip', architectures: ['SiglipModel'] })), /unsupported architecture/],
    [
      'wrong shapes',
      (d) => {
        const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        cfg.vision_config.hidden_size = 64;
        writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
      },
      /does not match config\.json: .*shape/,
    ],
    ['truncated weights', (d) => writeFileSync(join(d, 'model.safetensors'), readFileSync(join(d, 'model.safetensors')).subarray(0, 5000)), /model\.safetensors/],
  ];

  it.each(cases)('%s', (_name, mutate, message) => {
    const dir = broken(mutate);
    const out = join(tempDir('out'), 'model');
    expect(() => convertCheckpoint(dir, out)).toThrow(message);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(out, '..'))).toEqual([]); // no temporary folder left behind
  });

  it('falls back to the bundled CLIP vocabulary when the folder has no tokenizer files', () => {
    const dir = broken((d) => {
      rmSync(join(d, 'vocab.json'));
      rmSync(join(d, 'merges.txt'));
    });
    const out = join(tempDir('out'), 'model');
    convertCheckpoint(dir, out);
    expect(openTokenizer(out).tokenize('a photo of a cat.').slice(0, 8)).toEqual([49406, 320, 1125, 539, 320, 2368, 269, 49407]);
  });
});

describe('model.json', () => {
  it('records dims, grid, preprocessing, hashes and the engine\'s exact Worker memory', () => {
    const info = JSON.parse(readFileSync(join(tinyModel('tiny-p32-f16-legacy').modelDir, 'model.json'), 'utf8'));
    expect(info).toMatchObject({ embedDim: 32, imageSize: 224, patchSize: 32, grid: 7, eotPooling: 'argmax', preprocess: { resizeShortest: 224, resample: 'bicubic' } });
    expect(info.hashes['image_encoder_uint8.onnx'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(info.hashes['image_encoder_int8.bin'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(info.imageRuntime).toBe('engine');
    expect(info.workerMemory.fits).toBe(true);
    // The engine's memory is its weights plus run state, rounded up to 64 KiB pages (plus the module's stack and data).
    expect(info.engine.memoryBytes).toBeGreaterThanOrEqual(info.engine.weightBytes + info.engine.stateBytes);
    expect(info.engine.memoryBytes).toBeLessThan(info.engine.weightBytes + info.engine.stateBytes + 512 * 1024);
    expect(info.workerMemory.imageTowerBytes).toBe(info.engine.memoryBytes);
  });

  it('a ViT-B/32-shaped uint8 image tower is estimated over the Worker limit', { timeout: 120_000 }, () => {
    const spec = TINY_VARIANTS['vit-b32-shaped'];
    const ck = visionCheckpoint(spec);
    const bytes = buildImageEncoder(ck, 'uint8').encode().length;
    expect(bytes).toBeGreaterThan(80e6); // ~88 M weights at one byte each
    expect(estimateWorkerHeap(bytes)).toBeGreaterThan(WORKER_MEMORY_LIMIT);
  });
});
