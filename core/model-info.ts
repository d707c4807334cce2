// model.json: what the indexer and the Worker need to know about a converted model.
// One schema, validated where the file is read.
import { ATTENTIONS, type Attention } from './encoders.js';

export const MODEL_FORMAT = 'nameonly-model';
export const MODEL_SCHEMA_VERSION = 2;

/** A Worker isolate's memory limit. */
export const WORKER_MEMORY_LIMIT = 128 * 2 ** 20;

/**
 * What a Worker needs beside the image tower's WebAssembly memory and the index: code,
 * JIT, JavaScript heap, a small decoded image in flight. A fresh workerd grew by 13.8 MiB
 * of RSS serving its first classify of a small image with a tiny model (an upper bound: it
 * includes the local R2 simulator). Large images and segmentation need more.
 */
export const WORKER_JS_RESERVE = 16 * 2 ** 20;

/** onnxruntime-web's WASM heap was measured at about 2.2 × the model file + 16 MB. */
export function estimateWorkerHeap(modelFileBytes: number): number {
  return Math.round(2.2 * modelFileBytes + 16 * 2 ** 20);
}

export type ImageRuntime = 'engine' | 'onnxruntime';

export interface ModelFileInfo {
  sha256: string;
  bytes: number;
}

/** An engine tower's exact budget, measured by reserving it in the module at convert time. */
export interface EngineBudget {
  dim: number;
  layers: number;
  weightBytes: number;
  stateBytes: number;
  memoryBytes: number;
}

export interface ModelInfo {
  format: typeof MODEL_FORMAT;
  schemaVersion: typeof MODEL_SCHEMA_VERSION;
  name: string;
  source: { dtype: string; parameters: number };
  embedDim: number;
  imageSize: number;
  patchSize: number;
  /** Patch grid side G: patch_embeds has G*G rows in row-major order. */
  grid: number;
  contextLength: number;
  eotPooling: 'argmax' | 'first-eos';
  eosTokenId: number;
  /** exp(logit_scale) of the checkpoint (CLIP's trained value is 100). */
  logitScale: number;
  preprocess: {
    resizeShortest: number;
    cropSize: number;
    mean: [number, number, number];
    std: [number, number, number];
    resample: 'bicubic' | 'bilinear';
    alpha: 'dropped';
  };
  tokenizer: { vocab: string; merges: string };
  files: {
    imageEncoder: string;
    imageEncoderQuantized: string;
    textEncoder: string;
    /** The int8 engine's weight blob (engine/weights.ts). */
    engineWeights: string;
    /** The text tower's int8 engine blob (the text Worker); absent in older conversions. */
    textEngineWeights?: string;
  };
  hashes: Record<string, ModelFileInfo>;
  /** The image tower's engine budget. */
  engine: EngineBudget;
  /** The text tower on the engine (the text Worker), measured the same way; absent in older conversions. */
  textEngine?: EngineBudget;
  /** The Worker's image tower: the int8 engine (default) or onnxruntime-web (uint8 graph). */
  imageRuntime: ImageRuntime;
  /** The last blocks the image tower computes patch features with (absent in older conversions: csa and vanilla). */
  attentions?: Attention[];
  workerMemory: {
    /** WebAssembly memory of the chosen runtime (engine: exact; onnxruntime: estimate). */
    imageTowerBytes: number;
    /** onnxruntime-web's estimate for the uint8 graph, for comparison. */
    onnxruntimeEstimateBytes: number;
    /** imageTowerBytes + WORKER_JS_RESERVE; the index comes on top. */
    totalBytes: number;
    limitBytes: number;
    fits: boolean;
  };
}

export class ModelInfoError extends Error {}

/** Validates a parsed model.json. */
export function parseModelInfo(value: unknown): ModelInfo {
  const known: readonly string[] = ATTENTIONS;
  const m = value as Partial<ModelInfo> | null;
  if (!m || typeof m !== 'object' || m.format !== MODEL_FORMAT) throw new ModelInfoError('not a nameonly model.json (format field missing or wrong)');
  if (m.schemaVersion !== MODEL_SCHEMA_VERSION) throw new ModelInfoError(`model.json schema version ${String(m.schemaVersion)} is not supported (expected ${MODEL_SCHEMA_VERSION}): convert the checkpoint again with \`nameonly convert\``);
  for (const key of ['embedDim', 'imageSize', 'patchSize', 'grid', 'contextLength', 'logitScale'] as const) {
    if (typeof m[key] !== 'number' || !(m[key] > 0)) throw new ModelInfoError(`model.json: ${key} must be a positive number`);
  }
  if (!m.preprocess || !m.files || !m.hashes || !m.tokenizer || !m.workerMemory) throw new ModelInfoError('model.json: preprocess, files, hashes, tokenizer and workerMemory are required');
  if (m.imageRuntime !== 'engine' && m.imageRuntime !== 'onnxruntime') throw new ModelInfoError(`model.json: imageRuntime must be "engine" or "onnxruntime"`);
  const e = m.engine;
  if (!e || ![e.dim, e.layers, e.weightBytes, e.stateBytes, e.memoryBytes].every((n) => Number.isInteger(n) && n > 0) || typeof m.files.engineWeights !== 'string') {
    throw new ModelInfoError('model.json: engine (dim, layers, weightBytes, stateBytes, memoryBytes) and files.engineWeights are required');
  }
  const t = m.textEngine;
  if (t !== undefined && (![t.dim, t.layers, t.weightBytes, t.stateBytes, t.memoryBytes].every((n) => Number.isInteger(n) && n > 0) || typeof m.files.textEngineWeights !== 'string')) {
    throw new ModelInfoError('model.json: textEngine (dim, layers, weightBytes, stateBytes, memoryBytes) needs files.textEngineWeights');
  }
  if (m.attentions !== undefined && !(Array.isArray(m.attentions) && m.attentions.every((a) => known.includes(a)))) throw new ModelInfoError(`model.json: attentions must be a list of ${ATTENTIONS.join(', ')}`);
  return m as ModelInfo;
}
