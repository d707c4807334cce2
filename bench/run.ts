// `npm run bench`: throughput and cost figures, side by side in one run.
//   npm run bench                 all sections
//   npm run bench -- encoder      image encoders (node vs wasm, fp32 vs uint8) + matmul roofline
//   npm run bench -- scoring      scoring per image at ImageNet scale + support cache storage
//   npm run bench -- tune         name-only tuner at 1,000 classes × 16 images
//   npm run bench -- index        indexer at 1,000 classes × 16 shots from a 50,000-image pool
//   npm run bench -- segment      segmentation latency and memory at 8, 100 and 1,000 classes
//   npm run bench -- worker       the Worker in workerd: cold start, latency, decode, heap, load run
//                                 (BENCH_LOAD_SECONDS, default 30)
//   npm run bench -- labels       labels= with the text Worker: first and cached latency, memory
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ImageEncoder, type OrtModule } from '../core/encoders.js';
import { fromFloat16, toFloat16 } from '../core/compact.js';
import { normalizeRows, matrix } from '../core/linalg.js';
import { CALIP_DEFAULTS } from '../core/scoring/calip.js';
import { CalipGraph } from '../core/scoring/calip-graph.js';
import { SupportGraph } from '../core/scoring/support-graph.js';
import { scoreImage, type Method } from '../core/scoring/methods.js';
import { prepareSupport, tipxProbes } from '../core/scoring/tipx.js';
import { tuneHyperparameters } from '../core/scoring/tune.js';
import { nativeGemm } from '../indexer/native-gemm.js';
import { convertCheckpoint } from '../models/convert.js';
import { GraphBuilder } from '../core/onnx/graph-builder.js';
import { ortFor, readModelInfo } from '../models/load-model.js';
import { DataType } from '../core/onnx/proto.js';
import { TINY_VARIANTS, writeTinyCheckpoint, type TinyVariant } from '../models/tiny-checkpoints.js';
import { randomUnitRows } from '../test/helpers.js';
import { compareSupportStorage } from './storage.js';
import { benchIndexer } from './indexer.js';
import { chunksOf, EngineScoring } from '../engine/engine.js';
import { engineModules } from '../engine/node.js';
import { benchEngine, benchModels } from './engine.js';
import { benchSegment } from './segment.js';
import { benchWorker } from './worker.js';
import { benchLabels } from './labels.js';

const sections = process.argv.slice(2);
const want = (name: string) => sections.length === 0 || sections.includes(name);
const work = mkdtempSync(join(tmpdir(), 'nameonly-bench-'));

function timeIt(fn: () => void, minMs = 1500, minRuns = 3): number {
  fn(); // warm-up
  let runs = 0;
  const start = performance.now();
  while (runs < minRuns || performance.now() - start < minMs) {
    fn();
    runs++;
  }
  return (performance.now() - start) / runs;
}

async function timeAsync(fn: () => Promise<unknown>, minMs = 2000, minRuns = 3): Promise<number> {
  await fn();
  let runs = 0;
  const start = performance.now();
  while (runs < minRuns || performance.now() - start < minMs) {
    await fn();
    runs++;
  }
  return (performance.now() - start) / runs;
}


async function matmulGflops(ort: OrtModule, n: number): Promise<number> {
  const g = new GraphBuilder('matmul');
  const a = g.input('a', DataType.FLOAT, [n, n]);
  g.output(g.op1('MatMul', [a, g.float('b', [n, n], randomUnitRows(n, n, 1).data)]), 'c', [n, n]);
  const session = await ort.InferenceSession.create(g.encode());
  const feeds = { a: new ort.Tensor('float32', randomUnitRows(n, n, 2).data, [n, n]) };
  const ms = await timeAsync(() => session.run(feeds));
  return (2 * n ** 3) / (ms / 1000) / 1e9;
}

/** Multiply-adds ×2 of one forward pass through the image tower (all three outputs). */
function encoderFlops(variant: TinyVariant): number {
  const s = TINY_VARIANTS[variant];
  const N = (s.imageSize / s.patchSize) ** 2, T = N + 1, D = s.visionWidth;
  const block = 2 * T * D * 4 * D + 2 * 2 * T * T * D + 2 * 2 * T * D * 4 * D;
  const csaExtra = block + 2 * T * T * D; // one more block, with two score products
  return 2 * N * D * 3 * s.patchSize ** 2 + s.visionLayers * block + csaExtra + 2 * 2 * T * D * s.projectionDim;
}

async function benchEncoders(): Promise<void> {
  console.log('\n## Image encoder throughput (batch 8, one image = all three outputs)');
  const roofline = { node: 0, wasm: 0 };
  for (const runtime of ['node', 'wasm'] as const) {
    roofline[runtime] = await matmulGflops(await ortFor(runtime), 1024);
  }
  console.log(`fp32 matmul 1024³ achievable: onnxruntime-node ${roofline.node.toFixed(1)} GFLOP/s, onnxruntime-web (WASM, 1 thread) ${roofline.wasm.toFixed(1)} GFLOP/s`);
  console.log('| model | runtime | weights | images/s | GFLOP/s | of fp32 matmul peak (uint8 kernels can exceed it) |');
  console.log('|---|---|---|---|---|---|');
  for (const variant of ['tiny-p16', 'tinyclip-shaped'] as const) {
    const ck = join(work, 'ck', variant), md = join(work, 'model', variant);
    writeTinyCheckpoint(TINY_VARIANTS[variant], ck);
    convertCheckpoint(ck, md);
    const info = readModelInfo(md);
    const S = info.imageSize, batch = 8;
    const pixels = randomUnitRows(batch, 3 * S * S, 3).data.map((v) => v * 50);
    const flops = encoderFlops(variant);
    for (const runtime of ['node', 'wasm'] as const) {
      for (const quantized of [false, true]) {
        const file = quantized ? info.files.imageEncoderQuantized : info.files.imageEncoder;
        const encoder = await ImageEncoder.create(await ortFor(runtime), readFileSync(join(md, file)), info);
        const ms = await timeAsync(() => encoder.encode(pixels));
        const ips = (batch * 1000) / ms;
        const gflops = (ips * flops) / 1e9;
        console.log(`| ${variant} | ${runtime} | ${quantized ? 'uint8' : 'fp32'} | ${ips.toFixed(1)} | ${gflops.toFixed(2)} | ${((100 * gflops) / roofline[runtime]).toFixed(0)} % |`);
        await encoder.release();
      }
    }
  }
}

async function benchScoring(): Promise<void> {
  const C = 1000, D = 512, HW = 49, M = 16000;
  console.log(`\n## Scoring per image at ImageNet scale (C = ${C}, D = ${D}, HW = ${HW}, M = ${M}), Node ${process.version}`);
  const W = randomUnitRows(C, D, 11), F = randomUnitRows(M, D, 12);
  const labels = Int32Array.from({ length: M }, (_, i) => i % C);
  const support = prepareSupport(F, labels, W);
  const image = { embed: randomUnitRows(1, D, 13).data, patches: randomUnitRows(HW, D, 14) };
  const params = { ...CALIP_DEFAULTS, alpha: 1, beta: 5.5, gamma: 0.3 };
  console.log('| method | ms / image |');
  console.log('|---|---|');
  const stored = { ...support, features: { ...support.features, data: fromFloat16(toFloat16(support.features.data)) } }; // the index stores fp16 features
  for (const method of ['clip', 'calip', 'tipx', 'combined'] as Method[]) {
    const ms = timeIt(() => scoreImage(method, image, W, method === 'clip' || method === 'calip' ? null : support, params));
    console.log(`| ${method} | ${ms.toFixed(2)} |`);
  }
  for (const runtime of ['node', 'wasm'] as const) {
    const graph = await CalipGraph.create(await ortFor(runtime), W);
    const calipMs = await timeAsync(() => graph.terms(image.embed, image.patches).then((t) => scoreImage('calip', image, W, null, params, { calip: t })));
    const supportGraph = await SupportGraph.create(await ortFor(runtime), stored.features);
    const combinedMs = await timeAsync(async () => {
      const calip = await graph.terms(image.embed, image.patches);
      const supportProducts = await supportGraph.products(tipxProbes(image.embed, calip.clip, W).probes);
      return scoreImage('combined', image, W, stored, params, { calip, supportProducts });
    });
    console.log(`| calip, products on onnxruntime-${runtime} | ${calipMs.toFixed(2)} |`);
    console.log(`| combined, CALIP and TIP-X products on onnxruntime-${runtime} | ${combinedMs.toFixed(2)} |`);
  }
  // The Worker's path on the engine: CALIP's terms and TIP-X's pass over half-precision F in WebAssembly.
  const half = toFloat16(support.features.data);
  const scoring = await EngineScoring.create(await engineModules(), W, HW, { rows: M, halfBytes: chunksOf(new Uint8Array(half.buffer)) });
  const engineCalipMs = await timeAsync(() => scoring.terms(image.embed, image.patches).then((t) => scoreImage('calip', image, W, null, params, { calip: t })));
  const engineCombinedMs = await timeAsync(async () => {
    const calip = await scoring.terms(image.embed, image.patches);
    const supportProducts = await scoring.products(tipxProbes(image.embed, calip.clip, W).probes);
    return scoreImage('combined', image, W, stored, params, { calip, supportProducts });
  });
  console.log(`| calip, products on the engine (the Worker's path) | ${engineCalipMs.toFixed(2)} |`);
  console.log(`| combined, CALIP and TIP-X products on the engine (the Worker's path) | ${engineCombinedMs.toFixed(2)} |`);
  compareSupportStorage(W, support, image, params);
}

async function benchTune(): Promise<void> {
  const C = 1000, D = 512, K = 16;
  console.log(`\n## Name-only tuner: ${C} classes × ${K} support images, D = ${D}, no patch features (TIP-X grid)`);
  const centers = randomUnitRows(C, D, 21);
  const noise = randomUnitRows(C * K, D, 22);
  const data = new Float32Array(C * K * D);
  for (let i = 0; i < C * K; i++) for (let d = 0; d < D; d++) data[i * D + d] = centers.data[(i % C) * D + d]! + 0.8 * noise.data[i * D + d]!;
  const F = normalizeRows(matrix(data, C * K, D));
  const labels = Int32Array.from({ length: C * K }, (_, i) => i % C);
  const W = randomUnitRows(C, D, 23);
  const support = prepareSupport(F, labels, W);
  for (const [name, gemm] of [['JavaScript products', undefined], ['onnxruntime-node products (what the indexer uses)', await nativeGemm()]] as const) {
    const start = performance.now();
    const result = await tuneHyperparameters(W, support, { maxQueries: 1024, gemm });
    console.log(`${name}: ${result.queries} queries in ${((performance.now() - start) / 1000).toFixed(1)} s -> ${JSON.stringify(result.tipx)}`);
  }
}

if (want('engine')) await benchEngine();
if (want('models')) await benchModels();
if (want('encoder')) await benchEncoders();
if (want('scoring')) await benchScoring();
if (want('tune')) await benchTune();
if (want('index')) await benchIndexer(Number(process.env.BENCH_POOL ?? 50_000), 1000);
if (want('segment')) await benchSegment();
if (want('worker')) await benchWorker(Number(process.env.BENCH_LOAD_SECONDS ?? 30));
if (want('labels')) await benchLabels();
