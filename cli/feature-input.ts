// Reads the JSON feature dumps of `nameonly score` and `nameonly tune`, validating every shape.
import { readFileSync } from 'node:fs';
import { matrix, normalizeRows, type Matrix } from '../core/linalg.js';

export class InputError extends Error {}

export function readJsonFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const value = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('top level is not an object');
    return value as Record<string, unknown>;
  } catch (e) {
    throw new InputError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A number[][] of fixed width -> row-normalised Matrix. */
export function unitRows(value: unknown, field: string, width?: number): Matrix {
  if (!Array.isArray(value) || value.length === 0) throw new InputError(`${field} must be a non-empty array of rows`);
  const cols = width ?? (Array.isArray(value[0]) ? value[0].length : 0);
  if (cols === 0) throw new InputError(`${field}[0] must be a non-empty array of numbers`);
  const data = new Float32Array(value.length * cols);
  value.forEach((r: unknown, i) => {
    if (!Array.isArray(r) || r.length !== cols) throw new InputError(`${field}[${i}] must have ${cols} numbers`);
    r.forEach((v: unknown, d) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`${field}[${i}][${d}] is not a finite number`);
      data[i * cols + d] = v;
    });
  });
  return normalizeRows(matrix(data, value.length, cols));
}

export function labelsOf(value: unknown, field: string, count: number, numClasses: number): Int32Array {
  if (!Array.isArray(value) || value.length !== count) throw new InputError(`${field} must be an array of ${count} class indices`);
  return Int32Array.from(value, (v: unknown, i) => {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= numClasses) throw new InputError(`${field}[${i}] must be a class index in 0..${numClasses - 1}`);
    return v as number;
  });
}

export function patchesOf(value: unknown, field: string, count: number, dim: number): Matrix[] {
  if (!Array.isArray(value) || value.length !== count) throw new InputError(`${field} must hold ${count} arrays of patch rows`);
  return value.map((p, i) => unitRows(p, `${field}[${i}]`, dim));
}
