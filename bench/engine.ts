// The engine against onnxruntime-web, side by side in workerd (Miniflare, one isolate each):
// the int8 kernels' own GOP/s, then per model and runtime the cold start (isolate + first
// answer, model and a 1,000 × 16 index streamed from local R2), ms/image, classify p50,
// WebAssembly memory and the workerd RSS growth.
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Miniflare } from 'miniflare';
import { WORKER_JS_RESERVE, WORKER_MEMORY_LIMIT, type ModelInfo } from '../core/model-info.js';
import { chunksOf, EngineInstance, VitEngine } from '../engine/engine.js';
import { ENGINE_MODULE_FILES, engineModules, measureEngineMemory } from '../engine/node.js';
import { buildEngineBlob } from '../engine/weights.js';
import { renderPrompt } from '../eval/generator-server.js';
import { convertCheckpoint } from '../models/convert.js';
import { PUBLISHED_CONFIGS, publishedSpec, type PublishedModel } from '../models/published-configs.js';
import { visionCheckpoint, writeTinyCheckpoint } from '../models/tiny-checkpoints.js';
import { tempDir } from '../test/helpers.js';
import { startWorker, syntheticIndex, workerdRss } from '../test/worker-harness.js';
import { quantile } from './hostile-load.js';

const MiB = 2 ** 20;

/** Multiply-adds of one forward pass with image_embeds and patch_embeds (what classify asks for). */
function forwardMacs(s: { imageSize: number; patchSize: number; visionWidth: number; visionLayers: number; projectionDim: number }): { int8: number; f32: number } {
  const N = (s.imageSize / s.patchSize) ** 2, T = N + 1, D = s.visionWidth;
  const int8 = N * D * 3 * s.patchSize ** 2 + s.visionLayers * T * 12 * D * D + T * D * s.projectionDim;
  return { int8, f32: s.visionLayers * 2 * T * T * D };
}

/** The int8 product alone, in workerd: ms per call timed from outside (N+1 calls minus 1 call). */
async function kernelGops(T: number, n: number, O: number): Promise<Record<string, number>> {
  const build = new URL('../engine/build/', import.meta.url).pathname;
  const mf = new Miniflare({
    modules: [
      {
        type: 'ESModule',
        path: 'index.js',
        contents: `import relaxed from './relaxed.wasm'; import simd128 from './simd128.wasm';
const cache = {};
export default { async fetch(req) {
  const url = new URL(req.url); const kernel = url.searchParams.get('kernel'), reps = Number(url.searchParams.get('reps'));
  let e = cache[kernel];
  if (!e) {
    const ex = (await WebAssembly.instantiate(kernel === 'relaxed' ? relaxed : simd128, {})).exports;
    const p = { x: ex.engine_scratch(${T * n}), xs: ex.engine_scratch(${4 * T}), xz: ex.engine_scratch(${4 * T}), w: ex.engine_scratch(${O * n}), ws: ex.engine_scratch(${4 * O}), b: ex.engine_scratch(${4 * O}), wsum: ex.engine_scratch(${4 * O}), out: ex.engine_scratch(${4 * T * O}) };
    const mem = new Uint8Array(ex.memory.buffer);
    for (let i = 0; i < ${T * n}; i++) mem[p.x + i] = (i * 7) & 127;
    for (let i = 0; i < ${O * n}; i++) mem[p.w + i] = ((i * 13) % 255) - 127;
    e = cache[kernel] = { ex, p };
  }
  const { ex, p } = e;
  for (let i = 0; i < reps; i++) ex.engine_qmatmul(p.out, p.x, p.xs, p.xz, ${T}, p.w, p.ws, p.b, p.wsum, ${O}, ${n});
  return new Response('ok');
} }`,
      },
      { type: 'CompiledWasm', path: 'relaxed.wasm', contents: readFileSync(join(build, ENGINE_MODULE_FILES.relaxed)) },
      { type: 'CompiledWasm', path: 'simd128.wasm', contents: readFileSync(join(build, ENGINE_MODULE_FILES.simd128)) },
    ],
    compatibilityDate: '2026-04-01',
  });
  const out: Record<string, number> = {};
  try {
    for (const kernel of ['simd128', 'relaxed']) {
      const time = async (reps: number) => {
        const t = performance.now();
        await (await mf.dispatchFetch(`http://x/?kernel=${kernel}&reps=${reps}`)).text();
        return performance.now() - t;
      };
      await time(1);
      const samples: number[] = [];
      for (let i = 0; i < 5; i++) samples.push(((await time(21)) - (await time(1))) / 20);
      out[kernel] = (2 * T * n * O) / (quantile(samples, 0.5) / 1000) / 1e9;
    }
  } finally {
    await mf.dispose();
  }
  return out;
}

/** A copy of a converted model on onnxruntime-web; over-budget copies are marked as fitting so they can be measured at all. */
function onOnnxruntime(modelDir: string, dir: string): string {
  const copy = join(dir, 'model-ort');
  cpSync(modelDir, copy, { recursive: true });
  const info = JSON.parse(readFileSync(join(copy, 'model.json'), 'utf8')) as ModelInfo;
  info.imageRuntime = 'onnxruntime';
  info.workerMemory = { ...info.workerMemory, imageTowerBytes: info.workerMemory.onnxruntimeEstimateBytes, fits: true };
  writeFileSync(join(copy, 'model.json'), JSON.stringify(info, null, 2));
  return copy;
}

export async function benchEngine(): Promise<void> {
  console.log('\n## The int8 engine against onnxruntime-web, in workerd (one isolate, single thread)');
  const kernels = await kernelGops(50, 768, 3072);
  console.log(`int8 product alone (50 × 768 → 3072, a ViT-B/32 MLP): relaxed-SIMD ${kernels.relaxed!.toFixed(1)} GOP/s, plain SIMD128 ${kernels.simd128!.toFixed(1)} GOP/s`);
  console.log('| model | image tower | cold start (isolate + first answer) | ms / image p50 | of its kernel\'s GOP/s | classify combined p50 | WASM memory | index (JS) | workerd RSS growth |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const png = renderPrompt('a red star', 1, 224);
  // BENCH_ENGINE_MODELS (comma-separated ids) and BENCH_ENGINE_RUNTIMES (engine labels to keep) narrow the run.
  const models = (process.env.BENCH_ENGINE_MODELS?.split(',') ?? ['wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M', 'openai/clip-vit-base-patch32', 'openai/clip-vit-base-patch16']) as PublishedModel[];
  const keep = (label: string) => !process.env.BENCH_ENGINE_RUNTIMES || process.env.BENCH_ENGINE_RUNTIMES.split(',').some((r) => label.includes(r));
  for (const model of models) {
    const dir = tempDir('bench-engine');
    const spec = publishedSpec(model, { smallText: true });
    writeTinyCheckpoint(spec, join(dir, 'ck'));
    convertCheckpoint(join(dir, 'ck'), join(dir, 'model'));
    const macs = forwardMacs(spec);
    const runs: [string, string, Record<string, string>][] = [
      ['engine, relaxed SIMD', join(dir, 'model'), { ENGINE_KERNEL: 'relaxed' }],
      ['engine, SIMD128', join(dir, 'model'), { ENGINE_KERNEL: 'simd128' }],
      ['onnxruntime-web, uint8', onOnnxruntime(join(dir, 'model'), dir), {}],
    ];
    for (const [label, modelDir, vars] of runs.filter(([label]) => keep(label))) {
      try {
        await benchRun(model, label, modelDir, vars, png, macs, kernels);
      } catch (e) {
        console.log(`| ${model} | ${label} | failed: ${(e as Error).message.split('\n')[0]} |  |  |  |  |  |  |`);
      }
    }
  }
  console.log('(GOP/s fraction: the forward pass\'s int8 multiply-adds ×2 per second over the kernel\'s own; attention, LayerNorm, GELU and quantisation are the rest. RSS growth is an upper bound: it includes the local R2 simulator streaming the blobs in the same process.)');
}

/** One model on one image tower: published by one workerd, measured in a fresh one. */
async function benchRun(model: string, label: string, modelDir: string, vars: Record<string, string>, png: Uint8Array, macs: { int8: number }, kernels: Record<string, number>): Promise<void> {
  const r2 = join(tempDir('bench-r2'), 'r2');
  const publisher = await startWorker({ DEFAULT_INDEX: 'bench' }, false, false, r2);
  await publisher.publish(syntheticIndex(modelDir, 1000, 16), modelDir);
  await publisher.dispose();
  const start = performance.now();
  const worker = await startWorker({ DEFAULT_INDEX: 'bench', ...vars }, false, false, r2);
  try {
    await worker.fetch('/openapi.json');
    const before = workerdRss();
    const classify = async (method: string) => {
      const t = performance.now();
      const r = await worker.fetch(`/v1/classify?method=${method}`, { method: 'POST', body: png as BodyInit, headers: { 'content-type': 'image/png' } });
      const body = (await r.json()) as { timings_ms: { encode: number }; error?: { message: string } };
      if (!r.ok) throw new Error(`${label}: ${body.error?.message}`);
      return { ms: performance.now() - t, encode: body.timings_ms.encode };
    };
    await classify('combined');
    const cold = performance.now() - start;
    const encode: number[] = [], total: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await classify('combined');
      encode.push(r.encode);
      total.push(r.ms);
    }
    const memory = ((await (await worker.fetch('/v1/health')).json()) as { memory: { wasm_heap_bytes: number; index_bytes: number } }).memory;
    const ms = quantile(encode, 0.5);
    const kernel = label.includes('relaxed') ? kernels.relaxed : label.includes('SIMD128') ? kernels.simd128 : undefined;
    const fraction = kernel ? `${((100 * (2 * macs.int8) / (ms / 1000) / 1e9) / kernel).toFixed(0)} %` : '–';
    console.log(`| ${model} | ${label} | ${(cold / 1000).toFixed(1)} s | ${ms} | ${fraction} | ${quantile(total, 0.5).toFixed(0)} ms | ${(memory.wasm_heap_bytes / MiB).toFixed(1)} MiB | ${(memory.index_bytes / MiB).toFixed(1)} MiB | ${((workerdRss() - before) / MiB).toFixed(0)} MiB |`);
  } finally {
    await worker.dispose();
  }
}

/**
 * Every published configuration at its real size: the engine's exact memory (weights + run
 * state, what model.json records), whether it fits a Worker, and ms/image in Node (relaxed
 * kernel where this runtime has it) — the workerd table above covers three of them.
 */
export async function benchModels(): Promise<void> {
  console.log('\n## Published CLIP configurations on the engine (random weights at the real sizes)');
  console.log(`| model | image tower | engine memory (exact) | model fits (+ ${WORKER_JS_RESERVE / MiB} MiB JavaScript) | + index 1,000 × 16 | with that index fits | ms / image in Node ${process.version} (${(await EngineInstance.create(await engineModules())).kernel}) |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const model of Object.keys(PUBLISHED_CONFIGS) as PublishedModel[]) {
    const spec = publishedSpec(model, { smallText: true });
    const ck = visionCheckpoint(spec);
    const blob = buildEngineBlob(ck);
    const { memoryBytes } = measureEngineMemory(blob);
    // The scoring instance: W (C×D f32) + F (M×D halves) + scratch; the index's JavaScript arrays: queries, labels, lse, weights.
    const C = 1000, M = 16_000, D = spec.projectionDim, HW = (spec.imageSize / spec.patchSize) ** 2;
    const indexBytes = 4 * C * D + 2 * M * D + 4 * HW * (2 * D + C) + 4 * C * D + 12 * M;
    const fits = memoryBytes + WORKER_JS_RESERVE <= WORKER_MEMORY_LIMIT;
    const total = memoryBytes + indexBytes + WORKER_JS_RESERVE;
    let speed = 'not run (does not fit)';
    if (fits) {
      const info = { name: model, imageSize: spec.imageSize, patchSize: spec.patchSize, grid: spec.imageSize / spec.patchSize, embedDim: D } as never;
      const engine = await VitEngine.load(await engineModules(), info, { bytes: blob.length, chunks: chunksOf(blob) });
      const pixels = new Float32Array(3 * spec.imageSize ** 2).map((_, i) => Math.sin(i));
      await engine.encode(pixels, ['image_embeds', 'patch_embeds']);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await engine.encode(pixels, ['image_embeds', 'patch_embeds']);
        times.push(performance.now() - t);
      }
      speed = `${quantile(times, 0.5).toFixed(0)}`;
    }
    const vision = `${spec.visionLayers}×${spec.visionWidth}, patch ${spec.patchSize}, ${spec.act}`;
    const verdict = (bytes: number) => (bytes <= WORKER_MEMORY_LIMIT ? `yes (${(bytes / MiB).toFixed(0)} MiB)` : `no (${(bytes / MiB).toFixed(0)} MiB)`);
    console.log(`| ${model} | ${vision} | ${(memoryBytes / MiB).toFixed(1)} MiB | ${verdict(memoryBytes + WORKER_JS_RESERVE)} | ${((memoryBytes + indexBytes) / MiB).toFixed(1)} MiB | ${verdict(total)} | ${speed} |`);
  }
}
