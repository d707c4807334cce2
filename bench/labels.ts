// labels= in workerd with both Workers (Miniflare): the first request for new labels (the text
// Worker embeds them) against the same labels again (the image Worker's isolate cache), at 3, 30
// and 100 labels, on TinyCLIP-8M's and ViT-B/32's published sizes (random weights, real shapes),
// and each Worker's memory.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import IMAGENET from '../core/assets/imagenet-prompts.json' with { type: 'json' };
import { renderPrompt } from '../eval/generator-server.js';
import { convertCheckpoint } from '../models/convert.js';
import { publishedSpec, type PublishedModel } from '../models/published-configs.js';
import { writeTinyCheckpoint } from '../models/tiny-checkpoints.js';
import { modelJsonSha256 } from '../models/load-model.js';
import { tempDir } from '../test/helpers.js';
import { startWorker, syntheticIndex, type WorkerHandle } from '../test/worker-harness.js';
import { quantile } from './hostile-load.js';

const mb = (n: number) => (n / 2 ** 20).toFixed(1);

type Answer = { timings_ms: { text: number; total: number }; request_labels: { cache: { encoded: number; isolate: number } } };

async function classify(worker: WorkerHandle, labels: string[], image: Uint8Array): Promise<{ ms: number; answer: Answer }> {
  const start = performance.now();
  const r = await worker.fetch('/v1/classify?top_k=1', { method: 'POST', body: JSON.stringify({ image: Buffer.from(image).toString('base64'), labels }), headers: { 'content-type': 'application/json' } });
  if (!r.ok) throw new Error(`classify with ${labels.length} labels: HTTP ${r.status} ${await r.text()}`);
  const answer = (await r.json()) as Answer;
  return { ms: performance.now() - start, answer };
}

export async function benchLabels(): Promise<void> {
  console.log('\n## labels= in workerd: image Worker + text Worker (service binding), default template');
  console.log('| model (published size) | text tower load | labels | first request (text Worker embeds) | of which text | text Worker encode alone | again (isolate cache) p50 | image Worker memory | text Worker memory |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const names = IMAGENET.classes as string[];
  const models: PublishedModel[] = ['wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M', 'openai/clip-vit-base-patch32'];
  for (const model of models) {
    const ck = join(tempDir('bench-labels-ck'), 'ck'), modelDir = join(tempDir('bench-labels-model'), 'model');
    writeTinyCheckpoint(publishedSpec(model), ck);
    convertCheckpoint(ck, modelDir);
    const modelSha = modelJsonSha256(modelDir);
    const worker = await startWorker({ DEFAULT_INDEX: 'bench' }, false, false, undefined, 'bound');
    try {
      await worker.publish(syntheticIndex(modelDir, 8, 2), modelDir);
      const image = renderPrompt('a red star', 1, 224);
      await classify(worker, ['warm-up'], image).catch(() => undefined);
      // The text tower's load: the first request the text Worker sees, minus a cached one's encode.
      const text = await worker.mf.getWorker('nameonly-text');
      let offset = 0;
      for (const count of [3, 30, 100]) {
        const labels = names.slice(offset, offset + count);
        offset += count;
        const first = await classify(worker, labels, image);
        const again: number[] = [];
        for (let i = 0; i < 5; i++) again.push((await classify(worker, labels, image)).ms);
        // The text Worker's own encode time for as many labels it has not seen (no cache, no R2).
        const fresh = names.slice(500 + offset, 500 + offset + count);
        const direct = (await (await text.fetch('http://text/v1/embed', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: modelSha, labels: fresh, templates: ['a photo of a {}.'] }) })).json()) as { timings_ms: { encode: number } };
        const imageMemory = ((await (await worker.fetch('/v1/health')).json()) as { memory: { total_bytes: number; label_cache_bytes: number } }).memory;
        const textHealth = (await (await text.fetch('http://text/v1/health')).json()) as { memory: { wasm_heap_bytes: number }; models: { load_ms?: number }[] };
        console.log(`| ${model} | ${count === 3 ? `${textHealth.models[0]?.load_ms ?? '?'} ms` : ''} | ${count} | ${first.ms.toFixed(0)} ms | ${first.answer.timings_ms.text} ms | ${direct.timings_ms.encode} ms | ${quantile(again, 0.5).toFixed(0)} ms | ${mb(imageMemory.total_bytes)} MB (label cache ${mb(imageMemory.label_cache_bytes)}) | ${mb(textHealth.memory.wasm_heap_bytes)} MB WASM |`);
      }
    } finally {
      await worker.dispose();
    }
  }
}
