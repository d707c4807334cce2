// model.json: what the indexer and the Worker need to know about a converted model.
// One schema, validated where the file is read.

export const MODEL_FORMAT = 'nameonly-model';
export const MODEL_SCHEMA_VERSION = 1;

/** A Worker isolate's memory limit. */
export const WORKER_MEMORY_LIMIT = 128 * 2 ** 20;

/** onnxruntime-web's WASM heap was measured at about 2.2 × the model file + 16 MB. */
export function estimateWorkerHeap(modelFileBytes: number): number {
  return Math.round(2.2 * modelFileBytes + 16 * 2 ** 20);
}

export interface ModelFileInfo {
  sha256: string;
  bytes: number;
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
  };
  hashes: Record<string, ModelFileInfo>;
  workerMemory: { quantizedEstimateBytes: number; fp32EstimateBytes: number; limitBytes: number; fits: boolean };
}

export class ModelInfoError extends Error {}

/** Validates a parsed model.json. */
export function parseModelInfo(value: unknown): ModelInfo {
  const m = value as Partial<ModelInfo> | null;
  if (!m || typeof m !== 'object' || m.format !== MODEL_FORMAT) throw new ModelInfoError('not a nameonly model.json (format field missing or wrong)');
  if (m.schemaVersion !== MODEL_SCHEMA_VERSION) throw new ModelInfoError(`model.json schema version ${String(m.schemaVersion)} is not supported (expected ${MODEL_SCHEMA_VERSION})`);
  for (const key of ['embedDim', 'imageSize', 'patchSize', 'grid', 'contextLength', 'logitScale'] as const) {
    if (typeof m[key] !== 'number' || !(m[key] > 0)) throw new ModelInfoError(`model.json: ${key} must be a positive number`);
  }
  if (!m.preprocess || !m.files || !m.hashes || !m.tokenizer) throw new ModelInfoError('model.json: preprocess, files, hashes and tokenizer are required');
  return m as ModelInfo;
}
