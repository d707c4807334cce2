// Test fixtures: tiny seeded checkpoints, converted once per test process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matrix, normalizeRows, type Matrix } from '../core/linalg.js';
import { convertCheckpoint } from '../models/convert.js';
import { TINY_VARIANTS, writeTinyCheckpoint, type TinyVariant } from '../models/tiny-checkpoints.js';

// One folder per test file, removed when the file ends (test/setup.ts): the real-size
// checkpoints are gigabytes, and CI machines may have little disk.
const root = mkdtempSync(join(tmpdir(), 'nameonly-test-'));

export function removeTestFiles(): void {
  rmSync(root, { recursive: true, force: true });
}
const made = new Map<TinyVariant, { checkpointDir: string; modelDir: string }>();

export function tempDir(name: string): string {
  return mkdtempSync(join(root, `${name}-`));
}

export function tinyModel(variant: TinyVariant): { checkpointDir: string; modelDir: string } {
  let m = made.get(variant);
  if (!m) {
    const checkpointDir = join(root, 'ck', variant);
    const modelDir = join(root, 'model', variant);
    writeTinyCheckpoint(TINY_VARIANTS[variant], checkpointDir);
    convertCheckpoint(checkpointDir, modelDir);
    m = { checkpointDir, modelDir };
    made.set(variant, m);
  }
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

/** Mean cosine of corresponding rows of two [rows, dim] matrices. */
export function meanRowCosine(a: Float32Array, b: Float32Array, rows: number, dim: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) s += cosine(a.subarray(r * dim, (r + 1) * dim), b.subarray(r * dim, (r + 1) * dim));
  return s / rows;
}

/** Deterministic pseudo-random pixels in roughly the normalised range. */
export function testPixels(count: number, seed = 1): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37 + seed * 1.7) * 1.5 + Math.cos(i * 0.011 * seed) * 0.3);
}

/** Seeded unit vectors. */
export function randomUnitRows(rows: number, cols: number, seed: number): Matrix {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return normalizeRows(matrix(Float32Array.from({ length: rows * cols }, rand), rows, cols));
}

