// Published CLIP configurations at their real sizes (random weights, generated here, never
// committed): the engine against the fp32 ONNX graph, and the Worker's memory with a
// 1,000-class × 16-shot index, measured in workerd.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ATTENTION_OUTPUT, ATTENTIONS, ImageEncoder, TextEncoder, type ImageOutput } from '../core/encoders.js';
import { ClipTokenizer, pooledTokens } from '../core/tokenizer.js';
import { bundledVocabulary } from '../models/bundled-vocab.js';
import { WORKER_MEMORY_LIMIT } from '../core/model-info.js';
import { chunksOf, TextEngine, VitEngine } from '../engine/engine.js';
import { engineModules } from '../engine/node.js';
import { buildEngineBlob, buildTextEngineBlob } from '../engine/weights.js';
import { renderPrompt } from '../eval/generator-server.js';
import { buildImageEncoder, buildTextEncoder } from '../models/clip-graphs.js';
import { convertCheckpoint } from '../models/convert.js';
import { onnxruntimeNode, readModelInfo } from '../models/load-model.js';
import { PUBLISHED_CONFIGS, publishedSpec, type PublishedModel } from '../models/published-configs.js';
import { textCheckpoint, visionCheckpoint, writeTinyCheckpoint } from '../models/tiny-checkpoints.js';
import { cosine, meanRowCosine, tempDir, testPixels } from './helpers.js';
import { startWorker, syntheticIndex, workerdRss } from './worker-harness.js';

const MiB = 2 ** 20;

describe('engine parity at the real sizes of the published configurations that fit a Worker', () => {
  for (const model of (Object.keys(PUBLISHED_CONFIGS) as PublishedModel[]).filter((m) => m !== 'openai/clip-vit-large-patch14')) {
    it(`${model}: cosine >= 0.999 (image), >= 0.995 (patches of every last block: plain, CSA, NACLIP, ClearCLIP) against fp32, both kernels`, { timeout: 300_000 }, async () => {
      const spec = publishedSpec(model, { smallText: true });
      const ck = visionCheckpoint(spec);
      const blob = buildEngineBlob(ck);
      const info = { name: model, imageSize: 224, patchSize: spec.patchSize, grid: 224 / spec.patchSize, embedDim: spec.projectionDim } as never; // what load checks
      const ort = await onnxruntimeNode();
      const fp32 = await ImageEncoder.create(ort, buildImageEncoder(ck, 'fp32').encode(), info);
      const pixels = testPixels(3 * 224 * 224, 5);
      const every: ImageOutput[] = ['image_embeds', ...ATTENTIONS.map((k) => ATTENTION_OUTPUT[k].output)];
      const reference = await fp32.encode(pixels, every);
      await fp32.release();
      const N = (224 / spec.patchSize) ** 2, E = spec.projectionDim;
      for (const kernel of ['simd128', 'relaxed'] as const) {
        const engine = await VitEngine.load(await engineModules(), info, { bytes: blob.length, chunks: chunksOf(blob) }, { kernel });
        const out = await engine.encode(pixels, every);
        const image = cosine(out.imageEmbeds!, reference.imageEmbeds!);
        const patches = ATTENTIONS.map((k) => meanRowCosine(out[ATTENTION_OUTPUT[k].field]!, reference[ATTENTION_OUTPUT[k].field]!, N, E));
        console.log(`${model} (${kernel}): cosine to fp32 image ${image.toFixed(5)}, patches ${ATTENTIONS.map((k, i) => `${k} ${patches[i]!.toFixed(5)}`).join(', ')}`);
        expect(image).toBeGreaterThanOrEqual(0.999);
        for (const p of patches) expect(p).toBeGreaterThanOrEqual(0.995);
      }
    });
  }
});

describe('text tower parity at the real sizes of the published text towers', () => {
  // One of each distinct text tower: B-class (12 x 512, quick_gelu and gelu), TinyCLIP's 3 x 256 and 6 x 512.
  const models: PublishedModel[] = ['openai/clip-vit-base-patch32', 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K', 'wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M', 'wkcn/TinyCLIP-ViT-39M-16-Text-19M-YFCC15M'];
  const texts = ['a photo of a receipt.', 'a photo of a golden retriever puppy playing in the snow.', 'x '.repeat(90)];
  for (const model of models) {
    it(`${model}: text embeddings within cosine 0.999 of the fp32 text graph, both kernels`, { timeout: 300_000 }, async () => {
      const ck = textCheckpoint(publishedSpec(model));
      const blob = buildTextEngineBlob(ck);
      const info = { name: model, embedDim: ck.config.projectionDim, contextLength: 77, eosTokenId: ck.config.text.eosTokenId } as never; // what load and encode read
      const { vocab, merges } = bundledVocabulary();
      const tokenizer = new ClipTokenizer(vocab, merges);
      const rows = texts.map((t) => tokenizer.tokenize(t));
      const fp32 = await TextEncoder.create(await onnxruntimeNode(), buildTextEncoder(ck).encode(), info);
      const reference = await fp32.encode(rows);
      await fp32.release();
      const E = ck.config.projectionDim;
      for (const kernel of ['simd128', 'relaxed'] as const) {
        const engine = await TextEngine.load(await engineModules(), info, { bytes: blob.length, chunks: chunksOf(blob) }, { kernel });
        const cosines = rows.map((ids, i) => cosine(engine.encode(pooledTokens(ids, ck.config.text.eosTokenId)), reference.subarray(i * E, (i + 1) * E)));
        console.log(`${model} text (${kernel}): cosine to fp32 ${cosines.map((c) => c.toFixed(5)).join(', ')}; engine memory ${(engine.memoryBytes / MiB).toFixed(1)} MiB`);
        for (const c of cosines) expect(c).toBeGreaterThanOrEqual(0.999);
      }
    });
  }
});

describe('Worker memory at real sizes, 1,000 classes × 16 support images (workerd)', () => {
  // ViT-B/32 with its real text tower: the text Worker beside it embeds labels= within its own budget.
  const budgets: [PublishedModel, number, number?][] = [
    ['openai/clip-vit-base-patch32', 110 * MiB, 70 * MiB],
    ['openai/clip-vit-base-patch16', 120 * MiB],
  ];
  for (const [model, budget, textBudget] of budgets) {
    it(`${model}: health total within ${budget / MiB} MiB, and workerd really holds what health reports${textBudget ? `; the text Worker within ${textBudget / MiB} MiB` : ''}`, { timeout: 600_000 }, async () => {
      const dir = tempDir('real');
      writeTinyCheckpoint(publishedSpec(model, { smallText: !textBudget }), join(dir, 'ck'));
      convertCheckpoint(join(dir, 'ck'), join(dir, 'model'));
      const info = readModelInfo(join(dir, 'model'));
      expect(info.workerMemory.fits).toBe(true);
      // Published by one workerd, served by a fresh one, so its RSS growth is the load and the request.
      const r2 = join(dir, 'r2');
      const publisher = await startWorker({ DEFAULT_INDEX: 'bench' }, false, false, r2);
      await publisher.publish(syntheticIndex(join(dir, 'model'), 1000, 16), join(dir, 'model'));
      await publisher.dispose();
      const worker = await startWorker({ DEFAULT_INDEX: 'bench' }, false, false, r2, textBudget ? 'bound' : undefined);
      try {
        await worker.fetch('/openapi.json'); // the isolate is up, nothing loaded
        const before = workerdRss();
        const r = await worker.fetch('/v1/classify?method=combined', { method: 'POST', body: renderPrompt('a red star', 1, 224) as BodyInit, headers: { 'content-type': 'image/png' } });
        expect(r.status).toBe(200);
        const health = (await (await worker.fetch('/v1/health')).json()) as { memory: { wasm_heap_bytes: number; index_bytes: number; total_bytes: number } };
        const rssGrowth = workerdRss() - before;
        console.log(`${model}: health total ${(health.memory.total_bytes / MiB).toFixed(1)} MiB (wasm ${(health.memory.wasm_heap_bytes / MiB).toFixed(1)}, index ${(health.memory.index_bytes / MiB).toFixed(1)}), workerd RSS growth ${(rssGrowth / MiB).toFixed(1)} MiB`);
        expect(health.memory.total_bytes).toBeLessThanOrEqual(budget);
        // The process grew by at least what health counts (no memory it forgets), and by no more
        // than that plus what the local R2 simulator buffered in the same process to stream the
        // blobs (an upper bound: in production R2 is not in the isolate).
        expect(rssGrowth).toBeGreaterThanOrEqual(health.memory.wasm_heap_bytes);
        expect(rssGrowth).toBeLessThanOrEqual(health.memory.total_bytes + info.engine.weightBytes);
        expect(health.memory.total_bytes).toBeLessThan(WORKER_MEMORY_LIMIT);
        if (textBudget) {
          const labelled = await worker.fetch('/v1/classify?labels=receipt,invoice,menu', { method: 'POST', body: renderPrompt('a red star', 1, 224) as BodyInit, headers: { 'content-type': 'image/png' } });
          expect(labelled.status).toBe(200);
          const text = (await (await (await worker.mf.getWorker('nameonly-text')).fetch('http://text/v1/health')).json()) as { memory: { wasm_heap_bytes: number } };
          console.log(`${model}: text Worker WASM ${(text.memory.wasm_heap_bytes / MiB).toFixed(1)} MiB`);
          expect(text.memory.wasm_heap_bytes).toBeLessThanOrEqual(textBudget);
          expect(text.memory.wasm_heap_bytes).toBe(info.textEngine!.memoryBytes);
        }
      } finally {
        await worker.dispose();
        rmSync(dir, { recursive: true, force: true }); // a gigabyte or more: freed before the next model
      }
    });
  }

  it('openai/clip-vit-large-patch14 is refused with a message naming its size', { timeout: 600_000 }, async () => {
    const dir = tempDir('large');
    writeTinyCheckpoint(publishedSpec('openai/clip-vit-large-patch14', { smallText: true }), join(dir, 'ck'));
    const lines: string[] = [];
    convertCheckpoint(join(dir, 'ck'), join(dir, 'model'), (l) => lines.push(l));
    const info = readModelInfo(join(dir, 'model'));
    expect(info.workerMemory.fits).toBe(false);
    expect(lines.join('\n')).toMatch(/DOES NOT FIT in a Worker isolate: \d+\.\d MB over/);
    const worker = await startWorker({ DEFAULT_INDEX: 'bench' });
    try {
      await expect(worker.publish(syntheticIndex(join(dir, 'model'), 10, 1), join(dir, 'model'))).rejects.toThrow(/does not fit a Worker: it needs about 3\d\d MB of 128 MB/);
    } finally {
      await worker.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
