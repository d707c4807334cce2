// The index artifact: manifest.json + one data file of binary blobs. One schema
// (index-manifest.schema.json describes the same shape), validated where it is read.
import { fromFloat16 } from './compact.js';
import type { Matrix } from './linalg.js';
import type { CalipParams } from './scoring/calip.js';
import { METHODS, type HyperParams, type Method } from './scoring/methods.js';
import { classBalanceWeights, type SupportSet, type TipxParams } from './scoring/tipx.js';

export const INDEX_FORMAT = 'nameonly-index';
export const INDEX_SCHEMA_VERSION = 1;
export const DATA_FILE = 'data.bin';

export type BlobDtype = 'float32' | 'float16' | 'uint8' | 'int32';
const WIDTH: Record<BlobDtype, number> = { float32: 4, float16: 2, uint8: 1, int32: 4 };

export interface BlobRef {
  dtype: BlobDtype;
  shape: number[];
  byteOffset: number;
  byteLength: number;
  sha256: string;
}

export type SupportSource =
  | { kind: 'pool'; path: string; sha256: string }
  | { kind: 'generated'; prompt: string; seed: number; generator: string; sha256: string }
  | { kind: 'shots'; path: string; sha256: string };

export interface IndexClass {
  name: string;
  synonyms: string[];
}

export interface IndexManifest {
  format: typeof INDEX_FORMAT;
  schemaVersion: typeof INDEX_SCHEMA_VERSION;
  name: string;
  version: string;
  createdAt: string;
  /** path: where the model folder was when the index was built (offline commands look there). */
  model: { name: string; modelJsonSha256: string; embedDim: number; path?: string };
  classes: IndexClass[];
  prompts: { templates: string[]; descriptions: number };
  counts: { classes: number; queries: number; support: number };
  /** Segmentation queries: one row per class name or synonym; queryClass maps them to classes. */
  blobs: {
    textClassifier: BlobRef;
    queries: BlobRef;
    queryClass: BlobRef;
    supportFeatures?: BlobRef;
    supportLabels?: BlobRef;
    supportLogNorm?: BlobRef;
  };
  support: null | { sources: (SupportSource & { label: number })[]; perClass: number[]; requestedPerClass: number };
  hyperparameters: {
    source: 'leave-one-out' | 'defaults';
    params: { calip: CalipParams; tipx: TipxParams; combined: HyperParams };
    looAccuracy?: { clip: number; calip: number; tipx: number; combined: number; queries: number };
    /** What method=auto serves, chosen at index time (tune.ts chooseAuto); older indexes: the best looAccuracy. */
    auto?: Method;
    /** Fitted on the support set (indexer/calibrate.ts); absent without one: scores stay raw softmax. */
    calibration?: IndexCalibration;
  };
  data: { file: typeof DATA_FILE; byteLength: number; sha256: string };
}

/**
 * Per method: the temperature of calibrated probabilities, the leave-one-out NLL before and after,
 * and the "none of these" threshold on the calibrated top probability with its leave-one-out
 * rates (in-class answers kept, images of no class rejected).
 */
export type IndexCalibration = Record<Method, { temperature: number; nllBefore: number; nllAfter: number; rejectBelow: number; keptInClass: number; rejectedOutOfClass: number }>;

export class IndexFormatError extends Error {}

function fail(message: string): never {
  throw new IndexFormatError(`index manifest: ${message}`);
}

function checkBlob(name: string, b: unknown, dataLength: number | null): BlobRef {
  const blob = b as BlobRef;
  if (!blob || typeof blob !== 'object') fail(`blob ${name} is missing`);
  if (!(blob.dtype in WIDTH)) fail(`blob ${name} has unknown dtype ${String(blob.dtype)}`);
  if (!Array.isArray(blob.shape) || !blob.shape.every((n) => Number.isInteger(n) && n >= 0)) fail(`blob ${name} has a bad shape`);
  const expected = blob.shape.reduce((a, n) => a * n, 1) * WIDTH[blob.dtype];
  if (blob.byteLength !== expected) fail(`blob ${name} is ${blob.byteLength} bytes, its shape needs ${expected}`);
  if (!Number.isInteger(blob.byteOffset) || blob.byteOffset < 0 || blob.byteOffset % 4 !== 0) fail(`blob ${name} has a bad byte offset`);
  if (dataLength !== null && blob.byteOffset + blob.byteLength > dataLength) fail(`blob ${name} runs past the end of ${DATA_FILE}`);
  if (!/^[0-9a-f]{64}$/.test(blob.sha256)) fail(`blob ${name} has no sha256`);
  return blob;
}

/** Validates the shape of a parsed manifest (and blob bounds when the data length is known). */
export function parseIndexManifest(value: unknown, dataLength: number | null = null): IndexManifest {
  const m = value as IndexManifest;
  if (!m || typeof m !== 'object' || m.format !== INDEX_FORMAT) fail('not a nameonly index (format field missing or wrong)');
  if (m.schemaVersion !== INDEX_SCHEMA_VERSION) fail(`schema version ${String(m.schemaVersion)} is not supported (expected ${INDEX_SCHEMA_VERSION})`);
  if (typeof m.name !== 'string' || typeof m.version !== 'string') fail('name and version are required');
  if (!m.model || typeof m.model.modelJsonSha256 !== 'string' || !(m.model.embedDim > 0)) fail('model identity is missing');
  if (!Array.isArray(m.classes) || m.classes.length === 0) fail('classes must be a non-empty list');
  const C = m.classes.length, D = m.model.embedDim;
  if (m.counts?.classes !== C) fail('counts.classes does not match the class list');
  if (!m.blobs) fail('blobs are missing');
  const shapeIs = (name: string, blob: BlobRef, shape: number[]) => {
    if (blob.shape.join('x') !== shape.join('x')) fail(`blob ${name} has shape [${blob.shape}], expected [${shape}]`);
  };
  shapeIs('textClassifier', checkBlob('textClassifier', m.blobs.textClassifier, dataLength), [C, D]);
  shapeIs('queries', checkBlob('queries', m.blobs.queries, dataLength), [m.counts.queries, D]);
  shapeIs('queryClass', checkBlob('queryClass', m.blobs.queryClass, dataLength), [m.counts.queries]);
  if (m.support) {
    const M = m.counts.support;
    shapeIs('supportFeatures', checkBlob('supportFeatures', m.blobs.supportFeatures, dataLength), [M, D]);
    shapeIs('supportLabels', checkBlob('supportLabels', m.blobs.supportLabels, dataLength), [M]);
    shapeIs('supportLogNorm', checkBlob('supportLogNorm', m.blobs.supportLogNorm, dataLength), [M]);
    if (m.support.sources.length !== M) fail('support.sources does not list every support image');
  }
  if (!m.hyperparameters?.params?.combined) fail('hyperparameters are missing');
  if (m.hyperparameters.auto !== undefined && !METHODS.includes(m.hyperparameters.auto)) fail(`hyperparameters.auto must be one of ${METHODS.join(', ')}`);
  const calibration = m.hyperparameters.calibration;
  if (calibration !== undefined && !METHODS.every((k) => calibration[k]?.temperature > 0 && Number.isFinite(calibration[k].temperature) && calibration[k].rejectBelow >= 0 && calibration[k].rejectBelow <= 1)) {
    fail('hyperparameters.calibration needs a positive temperature and a rejectBelow in [0, 1] for every method');
  }
  if (!m.data || m.data.file !== DATA_FILE || !/^[0-9a-f]{64}$/.test(m.data.sha256)) fail('data file reference is missing');
  if (dataLength !== null && m.data.byteLength !== dataLength) fail(`${DATA_FILE} is ${dataLength} bytes, the manifest says ${m.data.byteLength}`);
  return m;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return hexOf(digest);
}

/** A digest as lowercase hex. */
export function hexOf(digest: ArrayBuffer): string {
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** What the scoring core needs, decoded from the blobs. */
export interface LoadedIndex {
  manifest: IndexManifest;
  textClassifier: Matrix;
  queries: Matrix;
  queryClass: Int32Array;
  /** With `supportFeatures: 'elsewhere'`, support.features is empty (held by another runtime). */
  support: SupportSet | null;
}

type BlobName = keyof IndexManifest['blobs'];

/** An aligned copy with its own buffer (Node's Buffer.slice would share the file's). */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

function floats(bytes: Uint8Array, blob: BlobRef): Float32Array {
  const own = ownBuffer(bytes);
  if (blob.dtype === 'float32') return new Float32Array(own);
  if (blob.dtype === 'float16') return fromFloat16(new Uint16Array(own));
  throw new IndexFormatError(`blob of dtype ${blob.dtype} is not a float matrix`);
}

/**
 * Decodes an index blob by blob, checking each blob's sha256. `read` gives a blob's bytes
 * (a view of the whole data file, or a ranged read). With `supportFeatures: 'elsewhere'` the
 * support features are neither read nor decoded: the caller streams them to the runtime
 * that holds them (the Worker's engine) and checks their hash there.
 */
export async function decodeIndex(manifest: IndexManifest, read: (blob: BlobRef) => Promise<Uint8Array>, options: { supportFeatures?: 'float32' | 'elsewhere' } = {}): Promise<LoadedIndex> {
  const get = async (name: BlobName): Promise<Uint8Array> => {
    const blob = manifest.blobs[name]!;
    const bytes = await read(blob);
    if (bytes.length !== blob.byteLength || (await sha256Hex(bytes)) !== blob.sha256) throw new IndexFormatError(`blob ${name} does not match its sha256`);
    return bytes;
  };
  const C = manifest.counts.classes, D = manifest.model.embedDim;
  const b = manifest.blobs;
  let support: SupportSet | null = null;
  if (manifest.support) {
    const M = manifest.counts.support;
    const labels = new Int32Array(ownBuffer(await get('supportLabels')));
    const features = options.supportFeatures === 'elsewhere' ? new Float32Array(0) : floats(await get('supportFeatures'), b.supportFeatures!);
    support = { features: { data: features, rows: M, cols: D }, labels, logNorm: floats(await get('supportLogNorm'), b.supportLogNorm!), weights: classBalanceWeights(labels, C), numClasses: C };
  }
  return {
    manifest,
    textClassifier: { data: floats(await get('textClassifier'), b.textClassifier), rows: C, cols: D },
    queries: { data: floats(await get('queries'), b.queries), rows: manifest.counts.queries, cols: D },
    queryClass: new Int32Array(ownBuffer(await get('queryClass'))),
    support,
  };
}

/** Decodes the whole data file, checking its sha256 and every blob's. */
export async function loadIndex(manifestValue: unknown, data: Uint8Array): Promise<LoadedIndex> {
  const manifest = parseIndexManifest(manifestValue, data.length);
  if ((await sha256Hex(data)) !== manifest.data.sha256) throw new IndexFormatError(`${DATA_FILE} does not match the manifest's sha256 (corrupt or from another version)`);
  return decodeIndex(manifest, async (blob) => data.subarray(blob.byteOffset, blob.byteOffset + blob.byteLength));
}
