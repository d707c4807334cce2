// `nameonly convert`: HF CLIP checkpoint folder -> model folder with the ONNX graphs,
// tokenizer files and model.json. Written to a temporary folder and renamed into place.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { estimateWorkerHeap, MODEL_FORMAT, MODEL_SCHEMA_VERSION, WORKER_JS_RESERVE, WORKER_MEMORY_LIMIT, type ImageRuntime, type ModelInfo } from '../core/model-info.js';
import { ATTENTIONS } from '../core/encoders.js';
import { measureEngineMemory } from '../engine/node.js';
import { buildEngineBlob, buildTextEngineBlob } from '../engine/weights.js';
import { bundledVocabulary } from './bundled-vocab.js';
import { loadCheckpoint, type Checkpoint } from './checkpoint.js';
import { buildImageEncoder, buildTextEncoder } from './clip-graphs.js';

export const FILES = {
  imageEncoder: 'image_encoder.onnx',
  imageEncoderQuantized: 'image_encoder_uint8.onnx',
  textEncoder: 'text_encoder.onnx',
  engineWeights: 'image_encoder_int8.bin',
  textEngineWeights: 'text_encoder_int8.bin',
} as const;

export interface ConvertResult {
  outDir: string;
  info: ModelInfo;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function parameterCount(ck: Checkpoint): number {
  let n = 0;
  for (const t of ck.weights.values()) n += t.data.length;
  return n;
}

export interface ConvertOptions {
  /** The Worker's image tower: the int8 engine (default) or onnxruntime-web. */
  imageRuntime?: ImageRuntime;
}

export class ConvertError extends Error {}

/**
 * Nothing a user owns is ever replaced: the output may not be the checkpoint or a folder that
 * holds it, and an existing non-empty output must be a model folder convert wrote.
 */
function checkOutput(checkpointDir: string, outDir: string): void {
  const ck = resolve(checkpointDir), out = resolve(outDir);
  if (out === ck || ck.startsWith(out + sep)) {
    throw new ConvertError(`--out ${outDir} is the checkpoint folder or holds it; converting there would destroy the checkpoint. Name a separate folder, e.g. --out ${ck}-nameonly`);
  }
  if (!existsSync(out) || readdirSync(out).length === 0) return;
  let ours = false;
  try {
    ours = (JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as { format?: string }).format === MODEL_FORMAT;
  } catch {
    // not ours
  }
  if (!ours) throw new ConvertError(`--out ${outDir} exists and is not a model folder nameonly convert wrote; refusing to replace it. Name a new or empty folder`);
}

export function convertCheckpoint(checkpointDir: string, outDir: string, log: (line: string) => void = () => {}, options: ConvertOptions = {}): ConvertResult {
  checkOutput(checkpointDir, outDir);
  const ck = loadCheckpoint(checkpointDir, bundledVocabulary);
  const c = ck.config;
  log(`checkpoint: ${checkpointDir} (${ck.sourceDtype}, ${(parameterCount(ck) / 1e6).toFixed(2)} M parameters; vision ${c.vision.layers}x${c.vision.hidden} patch ${c.vision.patchSize} @ ${c.vision.imageSize}px, text ${c.text.layers}x${c.text.hidden}, embed ${c.projectionDim})`);

  const files = new Map<string, Uint8Array>();
  log('building image encoder (fp32)...');
  files.set(FILES.imageEncoder, buildImageEncoder(ck, 'fp32').encode());
  log('building image encoder (uint8 weights)...');
  files.set(FILES.imageEncoderQuantized, buildImageEncoder(ck, 'uint8').encode());
  log('building the engine weight blob (int8)...');
  const blob = buildEngineBlob(ck);
  files.set(FILES.engineWeights, blob);
  const engineMemory = measureEngineMemory(blob);
  log('building text encoder...');
  files.set(FILES.textEncoder, buildTextEncoder(ck).encode());
  const textBlob = buildTextEngineBlob(ck);
  files.set(FILES.textEngineWeights, textBlob);
  const textEngineMemory = measureEngineMemory(textBlob, 'text');
  files.set('vocab.json', new TextEncoder().encode(JSON.stringify(ck.tokenizer.vocab)));
  files.set('merges.txt', new TextEncoder().encode(['#version: 0.2', ...ck.tokenizer.merges].join('\n') + '\n'));

  const hashes: ModelInfo['hashes'] = {};
  for (const [name, bytes] of files) hashes[name] = { sha256: sha256(bytes), bytes: bytes.length };
  const imageRuntime = options.imageRuntime ?? 'engine';
  const ortEstimate = estimateWorkerHeap(files.get(FILES.imageEncoderQuantized)!.length);
  const imageTowerBytes = imageRuntime === 'engine' ? engineMemory.memoryBytes : ortEstimate;
  const logitScaleRaw = ck.weights.get('logit_scale')?.data[0];
  const info: ModelInfo = {
    format: MODEL_FORMAT,
    schemaVersion: MODEL_SCHEMA_VERSION,
    name: basename(resolve(checkpointDir)),
    source: { dtype: ck.sourceDtype, parameters: parameterCount(ck) },
    embedDim: c.projectionDim,
    imageSize: c.vision.imageSize,
    patchSize: c.vision.patchSize,
    grid: c.vision.imageSize / c.vision.patchSize,
    contextLength: c.text.contextLength,
    eotPooling: c.text.eosTokenId === 2 ? 'argmax' : 'first-eos',
    eosTokenId: c.text.eosTokenId,
    logitScale: logitScaleRaw === undefined ? 100 : Math.min(100, Math.exp(logitScaleRaw)),
    preprocess: { ...ck.preprocess, alpha: 'dropped' },
    tokenizer: { vocab: 'vocab.json', merges: 'merges.txt' },
    files: { ...FILES },
    hashes,
    engine: { dim: c.vision.hidden, layers: c.vision.layers, weightBytes: blob.length, ...engineMemory },
    textEngine: { dim: c.text.hidden, layers: c.text.layers, weightBytes: textBlob.length, ...textEngineMemory },
    imageRuntime,
    attentions: [...ATTENTIONS],
    workerMemory: {
      imageTowerBytes,
      onnxruntimeEstimateBytes: ortEstimate,
      totalBytes: imageTowerBytes + WORKER_JS_RESERVE,
      limitBytes: WORKER_MEMORY_LIMIT,
      fits: imageTowerBytes + WORKER_JS_RESERVE <= WORKER_MEMORY_LIMIT,
    },
  };
  files.set('model.json', new TextEncoder().encode(JSON.stringify(info, null, 2) + '\n'));

  // Write everything next to the destination, then rename: never a half-written model.
  const target = resolve(outDir);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp);
  try {
    for (const [name, bytes] of files) writeFileSync(join(tmp, name), bytes);
    if (existsSync(target)) rmSync(target, { recursive: true });
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;
  for (const [name, { bytes }] of Object.entries(hashes)) log(`  ${name}: ${mb(bytes)}`);
  const w = info.workerMemory;
  log(`Worker memory, image tower on the ${imageRuntime === 'engine' ? 'int8 engine' : 'onnxruntime-web uint8 graph'}: ${mb(imageTowerBytes)}${imageRuntime === 'engine' ? ` (weights ${mb(blob.length)} + run state ${mb(engineMemory.stateBytes)}, exact)` : ' (estimate)'} + ${mb(WORKER_JS_RESERVE)} JavaScript = ${mb(w.totalBytes)} of ${mb(WORKER_MEMORY_LIMIT)}, before the index`);
  log(
    w.fits
      ? `  -> fits; the index (about 2 bytes per support-feature value + the classifier) must fit the remaining ${mb(WORKER_MEMORY_LIMIT - w.totalBytes)}`
      : `  -> DOES NOT FIT in a Worker isolate: ${mb(w.totalBytes - WORKER_MEMORY_LIMIT)} over. ViT-B/32 and B/16 fit on the engine; ViT-L/14 (300 M image parameters) does not fit at int8.${imageRuntime === 'onnxruntime' ? ` On the engine it would need ${mb(engineMemory.memoryBytes + WORKER_JS_RESERVE)}.` : ''}`,
  );
  return { outDir: target, info };
}
