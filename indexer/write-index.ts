// Serialises an index: blobs into data.bin (8-byte aligned, each with its sha256),
// then manifest.json; all in a temporary folder renamed into place at the end, so a
// crash or a full disk never leaves a half-written index under --out.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { toFloat16 } from '../core/compact.js';
import { DATA_FILE, INDEX_FORMAT, INDEX_SCHEMA_VERSION, parseIndexManifest, type BlobDtype, type BlobRef, type IndexManifest } from '../core/index-format.js';
import type { Matrix } from '../core/linalg.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

class BlobWriter {
  private parts: Uint8Array[] = [];
  private length = 0;

  add(dtype: BlobDtype, shape: number[], bytes: Uint8Array): BlobRef {
    const pad = (8 - (this.length % 8)) % 8;
    if (pad) this.push(new Uint8Array(pad));
    const ref = { dtype, shape, byteOffset: this.length, byteLength: bytes.length, sha256: sha256(bytes) };
    this.push(bytes);
    return ref;
  }
  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }
  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

const bytesOf = (a: Float32Array | Int32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export interface IndexContent {
  textClassifier: Matrix;
  queries: Matrix;
  queryClass: Int32Array;
  support: null | { features: Matrix; labels: Int32Array; logNorm: Float32Array };
}

export type ManifestFields = Omit<IndexManifest, 'format' | 'schemaVersion' | 'version' | 'createdAt' | 'blobs' | 'data' | 'name'> & { name?: string };

export function writeIndex(outDir: string, fields: ManifestFields, content: IndexContent): { manifest: IndexManifest; dir: string; bytes: number } {
  const blobs = new BlobWriter();
  const C = content.textClassifier.rows, D = content.textClassifier.cols;
  const refs: IndexManifest['blobs'] = {
    textClassifier: blobs.add('float32', [C, D], bytesOf(content.textClassifier.data)),
    queries: blobs.add('float32', [content.queries.rows, D], bytesOf(content.queries.data)),
    queryClass: blobs.add('int32', [content.queryClass.length], bytesOf(content.queryClass)),
  };
  if (content.support) {
    const M = content.support.labels.length;
    refs.supportFeatures = blobs.add('float16', [M, D], bytesOf(toFloat16(content.support.features.data)));
    refs.supportLabels = blobs.add('int32', [M], bytesOf(content.support.labels));
    refs.supportLogNorm = blobs.add('float32', [M], bytesOf(content.support.logNorm));
  }
  const data = blobs.finish();
  const target = resolve(outDir);
  const dataSha = sha256(data);
  const createdAt = new Date().toISOString();
  const manifest: IndexManifest = {
    format: INDEX_FORMAT,
    schemaVersion: INDEX_SCHEMA_VERSION,
    ...fields,
    name: fields.name ?? basename(target),
    version: `${createdAt.replace(/[-:]/g, '').replace(/\..*$/, '')}-${dataSha.slice(0, 8)}`,
    createdAt,
    blobs: refs,
    data: { file: DATA_FILE, byteLength: data.length, sha256: dataSha },
  };
  parseIndexManifest(manifest, data.length); // never write what we would refuse to read

  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  try {
    mkdirSync(tmp);
    writeFileSync(join(tmp, DATA_FILE), data);
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    if (existsSync(target)) {
      const old = `${target}.old-${process.pid}`;
      renameSync(target, old);
      renameSync(tmp, target);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot write the index to ${target}${code === 'ENOSPC' ? ': the disk is full' : `: ${(e as Error).message}`}; nothing was changed there`);
  }
  return { manifest, dir: target, bytes: data.length };
}
