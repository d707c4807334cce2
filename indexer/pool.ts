// SuS-LC: the unlabeled image pool. Listing, content-hashed incremental embedding,
// corrupt images skipped and reported.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { ImageDecodeError } from '../core/decode.js';
import { matrix, type Matrix } from '../core/linalg.js';
import type { Embedder } from './embedder.js';
import type { EmbeddingCache } from './embedding-cache.js';
import { InputFileError } from './inputs.js';
import { Progress } from './progress.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

/** A folder (recursively, sorted) or a text file of paths (relative to the file). */
export function listPool(source: string): string[] {
  let stat;
  try {
    stat = statSync(source);
  } catch {
    throw new InputFileError(`pool ${source} does not exist`);
  }
  let paths: string[];
  if (stat.isDirectory()) {
    paths = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const p = join(dir, entry.name);
        if (entry.isDirectory()) walk(p);
        else if (IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) paths.push(p);
      }
    };
    walk(source);
  } else {
    const base = dirname(resolve(source));
    paths = readFileSync(source, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((p) => resolve(base, p));
  }
  if (paths.length === 0) throw new InputFileError(`pool ${source} has no images (.jpg, .jpeg, .png)`);
  return paths;
}

export interface EmbeddedPool {
  paths: string[];
  sha256: string[];
  embeds: Matrix;
  skipped: { path: string; reason: string }[];
  fromCache: number;
}

export async function embedPool(paths: string[], embedder: Embedder, cache: EmbeddingCache, batch: number, progressStream: NodeJS.WriteStream | null = process.stderr): Promise<EmbeddedPool> {
  const D = embedder.info.embedDim;
  const kept: { path: string; sha: string }[] = [];
  const skipped: EmbeddedPool['skipped'] = [];
  const vectors = new Map<string, Float32Array>();
  let fromCache = 0;
  const progress = new Progress('embedding pool', paths.length, 'images', progressStream);
  let pending: { path: string; sha: string; bytes: Uint8Array }[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    try {
      const { embeds } = await embedder.embedImages(pending.map((p) => p.bytes), false);
      pending.forEach((p, i) => {
        const v = embeds.data.slice(i * D, (i + 1) * D);
        cache.add(p.sha, v);
        vectors.set(p.sha, v);
        kept.push(p);
      });
    } catch {
      // One bad image must not sink its batch: retry one by one to find it.
      for (const p of pending) {
        try {
          const v = (await embedder.embedImages([p.bytes], false)).embeds.data;
          cache.add(p.sha, v);
          vectors.set(p.sha, v);
          kept.push(p);
        } catch (e) {
          skipped.push({ path: p.path, reason: e instanceof ImageDecodeError ? e.message : `cannot embed: ${(e as Error).message}` });
        }
      }
    }
    progress.tick(pending.length);
    pending = [];
  };
  for (const path of paths) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      skipped.push({ path, reason: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      progress.tick();
      continue;
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    const cached = vectors.get(sha) ?? cache.get(sha);
    if (cached) {
      vectors.set(sha, cached);
      kept.push({ path, sha });
      fromCache++;
      progress.tick();
      continue;
    }
    pending.push({ path, sha, bytes });
    if (pending.length >= batch) await flush();
  }
  await flush();
  progress.finish();
  // Keep pool order stable (listing order) whatever the batching did.
  const order = new Map(paths.map((p, i) => [p, i]));
  kept.sort((a, b) => order.get(a.path)! - order.get(b.path)!);
  const data = new Float32Array(kept.length * D);
  kept.forEach((k, i) => data.set(vectors.get(k.sha)!, i * D));
  return { paths: kept.map((k) => k.path), sha256: kept.map((k) => k.sha), embeds: matrix(data, kept.length, D), skipped, fromCache };
}
