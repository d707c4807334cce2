// Models and indexes from R2, in the layout `nameonly publish` writes (core/storage-layout.ts).
// Loaded once per isolate; `current` is re-read at most every RELOAD_CHECK_SECONDS.
import { ImageEncoder, type ImageTower } from '../core/encoders.js';
import { toFloat16 } from '../core/compact.js';
import { DATA_FILE, decodeIndex, parseIndexManifest, sha256Hex, type BlobRef, type IndexManifest, type LoadedIndex } from '../core/index-format.js';
import { WORKER_MEMORY_LIMIT } from '../core/model-info.js';
import { Pipeline } from '../core/pipeline.js';
import { currentKey, indexKey, parseCurrentPointer } from '../core/storage-layout.js';
import { chunksOf, EngineError, EngineScoring, VitEngine, type KernelChoice } from '../engine/engine.js';
import { engineModules } from './engine-modules.js';
import { HttpError } from './http.js';
import { getBytes, hashedChunks, modelFile, readModelJson, streamTower } from './r2.js';
import { wasmHeapBytes, workerOrt } from './ort.js';

interface Loaded {
  /** `current`'s text when this was loaded: version and manifest hash. */
  pointer: string;
  version: string;
  pipeline: Pipeline;
  indexBytes: number;
  /** WebAssembly memory of this index's scoring instance (engine path): W, F, scratch. */
  scoringWasmBytes: number;
  loadedAt: number;
  checkedAt: number;
}

const encoders = new Map<string, Promise<ImageTower>>();

const mb = (n: number) => `${Math.round(n / 2 ** 20)} MB`;

/** The image tower of a model: the int8 engine, its blob streamed straight into WASM memory, or onnxruntime-web. */
async function openEncoder(bucket: R2Bucket, modelJsonSha256: string, kernel: KernelChoice): Promise<ImageTower> {
  const info = await readModelJson(bucket, modelJsonSha256);
  const m = info.workerMemory;
  if (!m.fits) {
    throw new HttpError('unavailable', `model ${info.name} needs about ${mb(m.totalBytes)} (image tower ${mb(m.imageTowerBytes)} on ${info.imageRuntime === 'engine' ? 'the int8 engine' : 'onnxruntime-web'}), over the Worker's ${mb(WORKER_MEMORY_LIMIT)}: use a smaller image tower`);
  }
  if (info.imageRuntime === 'onnxruntime') return ImageEncoder.create(workerOrt(), await modelFile(bucket, modelJsonSha256, info, info.files.imageEncoderQuantized, 'encoder'), info);
  return streamTower(bucket, modelJsonSha256, info, info.files.engineWeights, 'engine weights', (source) => VitEngine.load(engineModules, info, source, { kernel }));
}

/** A float32 blob read whole and checked (indexes written before features were stored as halves). */
async function float32Blob(object: R2ObjectBody, sha256: string, what: string): Promise<Float32Array> {
  const bytes = new Uint8Array(await object.arrayBuffer());
  if ((await sha256Hex(bytes)) !== sha256) throw new EngineError(`${what}: blob supportFeatures does not match its sha256`);
  return new Float32Array(bytes.buffer);
}

const halves = (h: Uint16Array) => new Uint8Array(h.buffer, h.byteOffset, h.byteLength);

/** Bytes of the index's JavaScript arrays (on the engine the classifier lives in WebAssembly memory). */
function sizeOf(index: LoadedIndex, classifierInWasm: boolean): number {
  const s = index.support;
  return (classifierInWasm ? 0 : index.textClassifier.data.byteLength) + index.queries.data.byteLength + index.queryClass.byteLength + (s ? s.features.data.byteLength + s.logNorm.byteLength + s.labels.byteLength + s.weights.byteLength : 0);
}

export class Store {
  private readonly indexes = new Map<string, Promise<Loaded>>();

  constructor(
    private readonly bucket: R2Bucket,
    private readonly reloadCheckMs: number,
    private readonly kernel: KernelChoice = 'auto',
  ) {}

  /** The text of `current`: "<version> <manifest sha256>". */
  private async currentPointer(name: string): Promise<string> {
    const object = await this.bucket.get(currentKey(name));
    if (!object) throw new HttpError('unavailable', `index "${name}" has not been published (no ${currentKey(name)})`);
    return (await object.text()).trim();
  }

  /**
   * Reads an index blob by blob (ranged reads of data.bin, each blob's sha256 checked), so the
   * isolate never holds the whole data file. On the engine the support features go from R2
   * straight into the engine instance that scores them, as IEEE halves.
   */
  private async load(name: string, pointer: string): Promise<Loaded> {
    const { version, manifestSha256 } = parseCurrentPointer(pointer);
    const what = `index ${name}@${version}`;
    const dataKey = indexKey(name, version, DATA_FILE);
    const [manifestBytes, dataHead] = await Promise.all([getBytes(this.bucket, indexKey(name, version, 'manifest.json'), what), this.bucket.head(dataKey)]);
    if (!dataHead) throw new HttpError('unavailable', `${what} is not in the bucket (${dataKey}); publish it with \`nameonly publish\``);
    if (manifestSha256 !== undefined && (await sha256Hex(manifestBytes)) !== manifestSha256) throw new HttpError('unavailable', `${what}: manifest.json does not match the sha256 in ${currentKey(name)} (altered after publishing?)`);
    let manifest: IndexManifest;
    try {
      manifest = parseIndexManifest(JSON.parse(new TextDecoder().decode(manifestBytes)), dataHead.size);
    } catch (e) {
      throw new HttpError('unavailable', `${what} cannot be loaded: ${(e as Error).message}`);
    }
    const sha = manifest.model.modelJsonSha256;
    let encoder = encoders.get(sha);
    if (!encoder) {
      encoder = openEncoder(this.bucket, sha, this.kernel);
      encoders.set(sha, encoder);
      encoder.catch(() => encoders.delete(sha));
    }
    const tower = await encoder;
    const onEngine = tower instanceof VitEngine;
    const range = async (blob: BlobRef) => {
      const object = await this.bucket.get(dataKey, { range: { offset: blob.byteOffset, length: blob.byteLength } });
      if (!object) throw new HttpError('unavailable', `${what}: ${dataKey} disappeared while loading`);
      return object;
    };
    let index: LoadedIndex;
    let scoringWasmBytes = 0;
    try {
      index = await decodeIndex(manifest, async (blob) => new Uint8Array(await (await range(blob)).arrayBuffer()), { supportFeatures: onEngine ? 'elsewhere' : 'float32' });
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError('unavailable', `${what} cannot be loaded: ${(e as Error).message}`);
    }
    const p = new Pipeline(tower, index);
    if (onEngine) {
      // CALIP and TIP-X on the engine: W moves into the scoring instance (JavaScript keeps a
      // view), F goes from R2 straight into it as halves.
      const F = manifest.blobs.supportFeatures;
      const support = index.support;
      let scoring: EngineScoring;
      try {
        const halfBytes = !F || !support ? undefined : F.dtype === 'float16' ? hashedChunks(await range(F), F.sha256, `${what}: blob supportFeatures`) : chunksOf(halves(toFloat16(await float32Blob(await range(F), F.sha256, what))));
        scoring = await EngineScoring.create(engineModules, index.textClassifier, tower.info.grid ** 2, halfBytes && support ? { rows: support.features.rows, halfBytes } : undefined);
      } catch (e) {
        throw new HttpError('unavailable', (e as Error).message);
      }
      index.textClassifier = scoring.classifier;
      scoringWasmBytes = scoring.memoryBytes;
      p.withProducts({ calip: scoring, support: support ? scoring : undefined });
    } else {
      await p.accelerate(workerOrt(), { releaseSupportFeatures: true });
    }
    const now = Date.now();
    return { pointer, version, pipeline: p, indexBytes: sizeOf(index, onEngine), scoringWasmBytes, loadedAt: now, checkedAt: now };
  }

  /**
   * The pipeline of an index, reloading when its `current` pointer has moved. A version that
   * fails to load (hash mismatch, parse error, missing blob, model refused) never replaces the
   * one being served: the last good version keeps answering, the failure is reported in
   * /v1/health, and the failed version is tried again only after a back-off (doubling from
   * max(RELOAD_CHECK_SECONDS, 5 s) to 10 minutes), not once per request.
   */
  async get(name: string): Promise<Loaded> {
    const entry = this.indexes.get(name);
    const loaded = entry ? await entry.catch(() => null) : null;
    if (loaded) {
      if (Date.now() - loaded.checkedAt < this.reloadCheckMs) return loaded;
      loaded.checkedAt = Date.now();
      let pointer: string;
      try {
        pointer = await this.currentPointer(name);
      } catch {
        return loaded; // the pointer cannot be read now: keep serving
      }
      if (pointer === loaded.pointer || this.backingOff(name, pointer)) return loaded;
      const next = this.loadVersion(name, pointer);
      return next.then(
        (fresh) => (this.indexes.set(name, next), fresh),
        () => loaded,
      );
    }
    if (entry) this.indexes.delete(name);
    const pointer = await this.currentPointer(name);
    const failed = this.failures.get(name);
    if (failed && this.backingOff(name, pointer)) throw new HttpError('unavailable', failed.reason);
    const first = this.loadVersion(name, pointer);
    this.indexes.set(name, first);
    first.catch(() => this.indexes.get(name) === first && this.indexes.delete(name));
    return first;
  }

  private readonly failures = new Map<string, { pointer: string; reason: string; attempts: number; retryAt: number }>();
  private readonly pending = new Map<string, Promise<Loaded>>();

  private backingOff(name: string, pointer: string): boolean {
    const failed = this.failures.get(name);
    return !!failed && failed.pointer === pointer && Date.now() < failed.retryAt;
  }

  /** One load per index and pointer at a time; failures recorded for health and back-off. */
  private loadVersion(name: string, pointer: string): Promise<Loaded> {
    const key = `${name}@${pointer}`;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.load(name, pointer).then(
        (loaded) => (this.failures.delete(name), loaded),
        (e: unknown) => {
          const previous = this.failures.get(name);
          const attempts = previous?.pointer === pointer ? previous.attempts + 1 : 1;
          const backoff = Math.min(600_000, Math.max(this.reloadCheckMs, 5_000) * 2 ** (attempts - 1));
          this.failures.set(name, { pointer, reason: (e as Error).message, attempts, retryAt: Date.now() + backoff });
          throw e;
        },
      );
      this.pending.set(key, pending);
      const done = () => void this.pending.delete(key);
      pending.then(done, done);
    }
    return pending;
  }

  /** Versions that failed to load, with the reason (the last good one is still served). */
  failedVersions(): { index: string; version: string; reason: string; attempts: number; retry_in_s: number }[] {
    return [...this.failures].map(([index, f]) => ({ index, version: parseCurrentPointer(f.pointer).version, reason: f.reason, attempts: f.attempts, retry_in_s: Math.max(0, Math.round((f.retryAt - Date.now()) / 1000)) }));
  }

  async snapshot(): Promise<{ name: string; version: string; bytes: number; wasm_bytes: number; model: string; image_runtime: string }[]> {
    const out = [];
    for (const [name, entry] of this.indexes) {
      const loaded = await entry.catch(() => null);
      const tower = loaded?.pipeline.encoder;
      if (loaded && tower) out.push({ name, version: loaded.version, bytes: loaded.indexBytes, wasm_bytes: loaded.scoringWasmBytes, model: tower.info.name, image_runtime: tower instanceof VitEngine ? `engine (${tower.kernel})` : 'onnxruntime-web' });
    }
    return out;
  }
}

/** WebAssembly memory of every image tower loaded (engine instances) and onnxruntime-web's heap. */
export async function towerWasmBytes(): Promise<number> {
  let total = wasmHeapBytes();
  for (const entry of encoders.values()) {
    const tower = await entry.catch(() => null);
    if (tower instanceof VitEngine) total += tower.memoryBytes;
  }
  return total;
}
