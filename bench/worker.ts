// Worker benchmarks in workerd (Miniflare listening on loopback): cold start, latency per
// method, 1080p JPEG decode, WASM heap, and a bounded load run (autocannon, 16 connections).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import jpeg from 'jpeg-js';
import { renderPrompt } from '../eval/generator-server.js';
import { convertCheckpoint } from '../models/convert.js';
import { TINY_VARIANTS, writeTinyCheckpoint, type TinyVariant } from '../models/tiny-checkpoints.js';
import { tempDir } from '../test/helpers.js';
import { hostileLoadRun, quantile } from './hostile-load.js';
import { startWorker, syntheticIndex } from '../test/worker-harness.js';

const mb = (n: number) => (n / 2 ** 20).toFixed(1);

function jpeg1080p(): Uint8Array {
  const w = 1920, h = 1080, rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgba.set([(x * 255) / w, (y * 255) / h, ((x ^ y) & 255), 255], (y * w + x) * 4);
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, 85).data);
}

export async function benchWorker(loadSeconds: number): Promise<void> {
  console.log('\n## Worker in workerd (Miniflare on loopback, one isolate)');
  console.log('| model | index | cold start: isolate / model + index load | classify clip p50/p95 | calip | tipx | combined | segment p50/p95 | 1080p JPEG decode | WASM heap + index |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  const png = renderPrompt('a red star', 1, 224);
  const big = jpeg1080p();
  const setups: [TinyVariant, number, number][] = [
    ['tiny-p16', 8, 16],
    ['tinyclip-shaped', 1000, 16],
  ];
  for (const [variant, classes, shots] of setups) {
    const ck = join(tempDir('bench-ck'), variant), modelDir = join(tempDir('bench-model'), variant);
    writeTinyCheckpoint(TINY_VARIANTS[variant], ck);
    convertCheckpoint(ck, modelDir);
    const indexDir = syntheticIndex(modelDir, classes, shots);
    let t = performance.now();
    const worker = await startWorker({ DEFAULT_INDEX: 'bench' }, true);
    const isolateMs = performance.now() - t;
    try {
      await worker.publish(indexDir, modelDir);
      t = performance.now();
      const health = await worker.fetch('/v1/health');
      const loadMs = performance.now() - t;
      if (!health.ok) throw new Error(`health: ${await health.text()}`);
      const scoring: string[] = [];
      const timeRequests = async (path: string, body: Uint8Array, n: number, type = 'image/png') => {
        const times: number[] = [], scores: number[] = [];
        for (let i = 0; i < n; i++) {
          const start = performance.now();
          const r = await worker.fetch(path, { method: 'POST', body: body as BodyInit, headers: { 'content-type': type } });
          const text = await r.text();
          if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
          if (i === 0) continue; // the first warms the path
          times.push(performance.now() - start);
          const score = (JSON.parse(text) as { timings_ms: { score?: number } }).timings_ms.score;
          if (score !== undefined) scores.push(score);
        }
        if (scores.length) scoring.push(`${path.split('method=')[1]} ${quantile(scores, 0.5)} ms`);
        return `${quantile(times, 0.5).toFixed(0)} / ${quantile(times, 0.95).toFixed(0)} ms`;
      };
      const n = variant === 'tiny-p16' ? 30 : 12;
      const methods: string[] = [];
      for (const m of ['clip', 'calip', 'tipx', 'combined']) methods.push(await timeRequests(`/v1/classify?method=${m}`, png, n));
      const segment = await timeRequests('/v1/segment?format=rle', png, Math.ceil(n / 2));
      const decodes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await worker.fetch('/v1/classify?method=clip', { method: 'POST', body: big as BodyInit, headers: { 'content-type': 'image/jpeg' } });
        decodes.push(((await r.json()) as { timings_ms: { decode: number } }).timings_ms.decode);
      }
      const memory = ((await (await worker.fetch('/v1/health')).json()) as { memory: { wasm_heap_bytes: number; index_bytes: number } }).memory;
      console.log(`| ${variant} | ${classes} classes × ${shots} | ${isolateMs.toFixed(0)} / ${loadMs.toFixed(0)} ms | ${methods.join(' | ')} | ${segment} | ${quantile(decodes, 0.5)} ms | ${mb(memory.wasm_heap_bytes)} + ${mb(memory.index_bytes)} MB |`);
      console.log(`|  | scoring alone inside the Worker (median of timings_ms.score): ${scoring.join(', ')} |`);
      if (variant === 'tiny-p16') await loadRun(worker.url, png, loadSeconds, worker);
    } finally {
      await worker.dispose();
    }
  }
}

async function loadRun(url: string, body: Uint8Array, seconds: number, worker: { fetch(p: string): Promise<Response> }): Promise<void> {
  const memory = async () => ((await (await worker.fetch('/v1/health')).json()) as { memory: { total_bytes: number } }).memory.total_bytes;
  const before = await memory();
  const result = await autocannon({ url: `${url}/v1/classify?method=combined`, method: 'POST', body: Buffer.from(body), headers: { 'content-type': 'image/png' }, connections: 16, duration: seconds });
  const after = await memory();
  console.log(
    `\nload (autocannon, 16 connections, ${seconds} s, classify combined, tiny model): ${result.requests.average.toFixed(1)} requests/s, latency p50 ${result.latency.p50} ms / p97.5 ${result.latency.p97_5} ms, errors ${result.errors}, non-2xx ${result.non2xx}, memory ${mb(before)} -> ${mb(after)} MB`,
  );
  // The same 16 clients, 4 of them sending hostile segmentations (a 1024×1 and a 65535×1 strip, size=256).
  const clean = await hostileLoadRun(url, body, { seconds, connections: 16, hostile: 0 });
  const mixed = await hostileLoadRun(url, body, { seconds, connections: 16, hostile: 4 });
  console.log(`hostile load (16 clients, ${seconds} s each): classify p50/p99 clean ${clean.classify.p50.toFixed(1)}/${clean.classify.p99.toFixed(1)} ms, with 4 hostile segment clients ${mixed.classify.p50.toFixed(1)}/${mixed.classify.p99.toFixed(1)} ms (p99 ratio ${(mixed.classify.p99 / clean.classify.p99).toFixed(2)}); classify failures ${clean.classify.failed} / ${mixed.classify.failed}; segment statuses ${JSON.stringify(mixed.segment.statuses)}`);
}
