// Models and indexes from R2, in the layout `nameonly publish` writes (core/storage-layout.ts).
// Loaded once per isolate; `current` is re-read at most every RELOAD_CHECK_SECONDS.
import { ImageEncoder } from '../core/encoders.js';
import { DATA_FILE, loadIndex, sha256Hex, type LoadedIndex } from '../core/index-format.js';
import { parseModelInfo, WORKER_MEMORY_LIMIT } from '../core/model-info.js';
import { Pipeline } from '../core/pipeline.js';
import { currentKey, indexKey, modelId, modelKey } from '../core/storage-layout.js';
import { HttpError } from './http.js';
import { workerOrt } from './ort.js';


interface Loaded {
  version: string;
  pipeline: Pipeline;
  indexBytes: number;
  loadedAt: number;
  checkedAt: number;
}

const encoders = new Map<string, Promise<ImageEncoder>>();

async function getBytes(bucket: R2Bucket, key: string, what: string): Promise<Uint8Array> {
  const object = await bucket.get(key);
  if (!object) throw new HttpError('unavailable', `${what} is not in the bucket (${key}); publish it with \`nameonly publish\``);
  return new Uint8Array(await object.arrayBuffer());
}

async function openEncoder(bucket: R2Bucket, modelJsonSha256: string): Promise<ImageEncoder> {
  const id = modelId(modelJsonSha256);
  const modelJson = await getBytes(bucket, modelKey(modelJsonSha256, 'model.json'), `model ${id}`);
  if ((await sha256Hex(modelJson)) !== modelJsonSha256) throw new HttpError('unavailable', `model ${id} in the bucket is not the model the index was built for`);
  const info = parseModelInfo(JSON.parse(new TextDecoder().decode(modelJson)));
  if (info.workerMemory.quantizedEstimateBytes > WORKER_MEMORY_LIMIT) {
    throw new HttpError('unavailable', `model ${info.name} needs about ${Math.round(info.workerMemory.quantizedEstimateBytes / 2 ** 20)} MB, over the Worker's 128 MB: use a smaller image tower`);
  }
  const file = info.files.imageEncoderQuantized;
  const bytes = await getBytes(bucket, modelKey(modelJsonSha256, file), `encoder of model ${id}`);
  if ((await sha256Hex(bytes)) !== info.hashes[file]?.sha256) throw new HttpError('unavailable', `encoder of model ${id} does not match its hash in model.json`);
  return ImageEncoder.create(workerOrt(), bytes, info);
}

function sizeOf(index: LoadedIndex): number {
  const s = index.support;
  return index.textClassifier.data.byteLength + index.queries.data.byteLength + index.queryClass.byteLength + (s ? s.features.data.byteLength + s.logNorm.byteLength + s.labels.byteLength + s.weights.byteLength : 0);
}

export class Store {
  private readonly indexes = new Map<string, Promise<Loaded>>();

  constructor(
    private readonly bucket: R2Bucket,
    private readonly reloadCheckMs: number,
  ) {}

  private async currentVersion(name: string): Promise<string> {
    const object = await this.bucket.get(currentKey(name));
    if (!object) throw new HttpError('unavailable', `index "${name}" has not been published (no ${currentKey(name)})`);
    return (await object.text()).trim();
  }

  private async load(name: string, version: string): Promise<Loaded> {
    const [manifestBytes, data] = await Promise.all([getBytes(this.bucket, indexKey(name, version, 'manifest.json'), `index ${name}@${version}`), getBytes(this.bucket, indexKey(name, version, DATA_FILE), `index ${name}@${version}`)]);
    let index: LoadedIndex;
    try {
      index = await loadIndex(JSON.parse(new TextDecoder().decode(manifestBytes)), data);
    } catch (e) {
      throw new HttpError('unavailable', `index ${name}@${version} cannot be loaded: ${(e as Error).message}`);
    }
    const sha = index.manifest.model.modelJsonSha256;
    let encoder = encoders.get(sha);
    if (!encoder) {
      encoder = openEncoder(this.bucket, sha);
      encoders.set(sha, encoder);
      encoder.catch(() => encoders.delete(sha));
    }
    const now = Date.now();
    const pipeline = await new Pipeline(await encoder, index).accelerate(workerOrt(), { releaseSupportFeatures: true });
    return { version, pipeline, indexBytes: sizeOf(index), loadedAt: now, checkedAt: now };
  }

  /** The pipeline of an index, reloading when its `current` pointer has moved. */
  async get(name: string): Promise<Loaded> {
    let entry = this.indexes.get(name);
    if (entry) {
      const loaded = await entry.catch(() => null);
      if (loaded && Date.now() - loaded.checkedAt < this.reloadCheckMs) return loaded;
      if (loaded) {
        loaded.checkedAt = Date.now();
        const version = await this.currentVersion(name);
        if (version === loaded.version) return loaded;
      }
      this.indexes.delete(name);
    }
    entry = this.currentVersion(name).then((version) => this.load(name, version));
    this.indexes.set(name, entry);
    entry.catch(() => this.indexes.delete(name));
    return entry;
  }

  async snapshot(): Promise<{ name: string; version: string; bytes: number; model: string }[]> {
    const out = [];
    for (const [name, entry] of this.indexes) {
      const loaded = await entry.catch(() => null);
      if (loaded) out.push({ name, version: loaded.version, bytes: loaded.indexBytes, model: loaded.pipeline.encoder.info.name });
    }
    return out;
  }
}
