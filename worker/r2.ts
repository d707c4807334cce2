// Reading models from R2, for both Workers: every file checked against its sha256, engine
// blobs streamed into their instance without a JavaScript copy.
import { hexOf, sha256Hex } from '../core/index-format.js';
import { parseModelInfo, type ModelInfo } from '../core/model-info.js';
import { modelId, modelKey } from '../core/storage-layout.js';
import { EngineError, type BlobSource } from '../engine/engine.js';
import { HttpError } from './http.js';

export async function getBytes(bucket: R2Bucket, key: string, what: string): Promise<Uint8Array> {
  const object = await bucket.get(key);
  if (!object) throw new HttpError('unavailable', `${what} is not in the bucket (${key}); publish it with \`nameonly publish\``);
  return new Uint8Array(await object.arrayBuffer());
}

/** A model's model.json from the bucket, checked against the sha256 it is keyed by. */
export async function readModelJson(bucket: R2Bucket, modelJsonSha256: string): Promise<ModelInfo> {
  const id = modelId(modelJsonSha256);
  const modelJson = await getBytes(bucket, modelKey(modelJsonSha256, 'model.json'), `model ${id}`);
  if ((await sha256Hex(modelJson)) !== modelJsonSha256) throw new HttpError('unavailable', `model ${id} in the bucket is not the model the index was built for`);
  try {
    return parseModelInfo(JSON.parse(new TextDecoder().decode(modelJson)));
  } catch (e) {
    throw new HttpError('unavailable', `model ${id}: ${(e as Error).message}`);
  }
}

/** A model file from the bucket, checked against its sha256 in model.json. */
export async function modelFile(bucket: R2Bucket, modelJsonSha256: string, info: ModelInfo, file: string, what: string): Promise<Uint8Array> {
  const bytes = await getBytes(bucket, modelKey(modelJsonSha256, file), `${what} of model ${info.name}`);
  if ((await sha256Hex(bytes)) !== info.hashes[file]?.sha256) throw new HttpError('unavailable', `${what} of model ${info.name} does not match its hash in model.json`);
  return bytes;
}

/**
 * A tower's engine blob streamed from the bucket into a fresh engine instance (`load`), hashed
 * as it passes; every failure is a 503 naming its reason.
 */
export async function streamTower<T>(bucket: R2Bucket, modelJsonSha256: string, info: ModelInfo, file: string, what: string, load: (source: BlobSource) => Promise<T>): Promise<T> {
  const object = await bucket.get(modelKey(modelJsonSha256, file));
  if (!object) throw new HttpError('unavailable', `${what} of model ${info.name} are not in the bucket; publish the model again`);
  try {
    return await load({ bytes: object.size, chunks: hashedChunks(object, info.hashes[file]?.sha256 ?? '', `${what} of model ${info.name}`) });
  } catch (e) {
    // A bad blob names its reason; a read that broke off is a storage error: both 503.
    throw new HttpError('unavailable', e instanceof EngineError ? e.message : `${what} of model ${info.name} could not be read from the bucket: ${(e as Error).message}`);
  }
}

/** An R2 body's chunks, hashed as they pass; the last step throws if the sha256 differs. */
export async function* hashedChunks(object: R2ObjectBody, sha256: string, what: string): AsyncIterable<Uint8Array> {
  const digest = new crypto.DigestStream('SHA-256');
  const writer = digest.getWriter();
  const reader = object.body.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    await writer.write(r.value);
    yield r.value;
  }
  await writer.close();
  if (hexOf(await digest.digest) !== sha256) throw new EngineError(`${what}: sha256 mismatch (corrupt, or not the file its model.json or manifest names)`);
}
