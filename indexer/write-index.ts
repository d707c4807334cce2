// Serialises an index: blobs into data.bin (8-byte aligned, each with its sha256),
// then manifest.json. Each version is written to a temporary folder under
// <out>.versions/, renamed to its version there, and <out> is a symbolic link swapped to it
// with one rename: at no moment is <out> missing or half-written, whatever kills the run
// (a crash, a full disk, SIGKILL); the next run clears what a dead one left behind.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
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

  const versions = `${target}.versions`;
  const tmp = join(versions, `tmp-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(versions, { recursive: true });
    adoptRealFolder(target, versions);
    const previous = linkedVersion(target);
    for (const entry of readdirSync(versions)) if (entry.startsWith('tmp-')) rmSync(join(versions, entry), { recursive: true, force: true });
    mkdirSync(tmp);
    writeFileSync(join(tmp, DATA_FILE), data);
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    // A rebuild within the same second of the same data has the same version: a fresh folder name.
    let folder = manifest.version;
    for (let n = 2; lstatExists(join(versions, folder)); n++) folder = `${manifest.version}-${n}`;
    renameSync(tmp, join(versions, folder));
    const link = `${target}.link-${process.pid}`;
    rmSync(link, { force: true });
    symlinkSync(join(basename(versions), folder), link);
    renameSync(link, target); // atomic: readers see the old version or the new one
    // Keep the version just replaced (a rollback is one link away); drop older ones.
    for (const entry of readdirSync(versions)) if (entry !== folder && entry !== previous) rmSync(join(versions, entry), { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot write the index to ${target}${code === 'ENOSPC' ? ': the disk is full' : `: ${(e as Error).message}`}; nothing was changed there`);
  }
  return { manifest, dir: target, bytes: data.length };
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The version folder <out> links to now, if it is such a link. */
function linkedVersion(target: string): string | undefined {
  try {
    return lstatSync(target).isSymbolicLink() ? basename(readlinkSync(target)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An index folder written by an earlier nameonly (a real folder at <out>) moves into
 * <out>.versions/ once; any other existing <out> is the user's and is refused.
 */
function adoptRealFolder(target: string, versions: string): void {
  let stat;
  try {
    stat = lstatSync(target);
  } catch {
    return;
  }
  if (stat.isSymbolicLink()) return;
  let version: unknown;
  try {
    const manifest = JSON.parse(readFileSync(join(target, 'manifest.json'), 'utf8')) as { format?: unknown; version?: unknown };
    if (manifest.format === INDEX_FORMAT) version = manifest.version;
  } catch {
    // not an index
  }
  if (typeof version !== 'string' || !/^[\w.-]+$/.test(version)) throw new Error(`${target} exists and is not an index nameonly wrote; refusing to replace it (name another --out)`);
  let folder = version;
  for (let n = 2; lstatExists(join(versions, folder)); n++) folder = `${version}-${n}`;
  renameSync(target, join(versions, folder));
  symlinkSync(join(basename(versions), folder), target);
}
