import { describe, expect, it } from 'vitest';
import { matrix, normalizeRows, type Matrix } from '../core/linalg.js';
import { calipTerms } from '../core/scoring/calip.js';
import { prepareSupport } from '../core/scoring/tipx.js';
import { chooseQueries, GUARD_Z, pairedZ, queryTermsOf, REFERENCE, searchGrids, tuneHyperparameters } from '../core/scoring/tune.js';
import { randomUnitRows } from './helpers.js';

function noisyAround(centers: Matrix, labels: number[], noise: number, seed: number): Matrix {
  const n = randomUnitRows(labels.length, centers.cols, seed);
  const data = new Float32Array(labels.length * centers.cols);
  labels.forEach((y, i) => {
    for (let d = 0; d < centers.cols; d++) data[i * centers.cols + d] = centers.data[y * centers.cols + d]! + noise * n.data[i * centers.cols + d]!;
  });
  return normalizeRows(matrix(data, labels.length, centers.cols));
}

describe('name-only tuner (leave-one-out on the support set)', () => {
  it('recovers planted CALIP β2, β3', async () => {
    const C = 6, D = 16, M = 240, HW = 4;
    const W = randomUnitRows(C, D, 31);
    const F = randomUnitRows(M, D, 32);
    const patches = Array.from({ length: M }, (_, j) => randomUnitRows(HW, D, 1000 + j));
    // Labels are what CALIP with β2 = 3, β3 = 0.3 predicts: those values are 100 % right.
    const labels = Int32Array.from({ length: M }, (_, j) => {
      const t = calipTerms(F.data.subarray(j * D, (j + 1) * D), patches[j]!, W);
      const logits = t.clip.map((v, c) => v + 3 * t.visualGuidedText[c]! + 0.3 * t.textAwareVisual[c]!);
      return logits.indexOf(Math.max(...logits));
    });
    const result = await tuneHyperparameters(W, prepareSupport(F, labels, W), { supportPatches: patches });
    expect(result.calip.tuned).toBe(true);
    expect(result.guard.calip!.kept).toBe('tuned');
    expect(result.calip.looAccuracy).toBeGreaterThan(0.97);
    expect(result.calip.looAccuracy).toBeGreaterThan(result.clip.looAccuracy);
    expect(Math.abs(result.calip.beta2 - 3)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(result.calip.beta3 - 0.3)).toBeLessThanOrEqual(0.1);
  });

  it('leans on the support set when the text classifier is useless, and finds it LOO-accurate', async () => {
    const C = 5, D = 16;
    const centers = randomUnitRows(C, D, 41);
    const labels = Array.from({ length: 60 }, (_, i) => i % C);
    const F = noisyAround(centers, labels, 0.4, 42);
    const W = randomUnitRows(C, D, 43); // unrelated to the classes
    const result = await tuneHyperparameters(W, prepareSupport(F, Int32Array.from(labels), W));
    expect(result.clip.looAccuracy).toBeLessThan(0.5);
    expect(result.tipx.looAccuracy).toBeGreaterThan(0.9);
    expect(result.tipx.alpha).toBeGreaterThanOrEqual(5);
    expect(result.guard.tipx.kept).toBe('tuned');
  });

  it('the guard keeps the reference values when the tuned gain is noise (labels unrelated to anything), not when it is real', async () => {
    expect(pairedZ([true, true, true, false], [false, false, true, true])).toBeCloseTo(1 / Math.sqrt(3), 12);
    expect(pairedZ([true, false], [true, false])).toBe(0);
    const C = 4, D = 16, M = 48, HW = 4;
    const W = randomUnitRows(C, D, 61), F = randomUnitRows(M, D, 62);
    const patches = Array.from({ length: M }, (_, j) => randomUnitRows(HW, D, 2000 + j));
    const labels = Int32Array.from({ length: M }, (_, j) => (j * 7) % C); // no relation to F, W or the patches
    const support = prepareSupport(F, labels, W);
    const result = await tuneHyperparameters(W, support, { supportPatches: patches });
    for (const method of ['calip', 'tipx', 'combined'] as const) {
      expect(result.guard[method]!.kept, method).toBe('reference');
      expect(result.guard[method]!.z).toBeLessThan(GUARD_Z);
    }
    expect([result.calip.beta2, result.calip.beta3]).toEqual([REFERENCE.beta2, REFERENCE.beta3]);
    expect([result.tipx.alpha, result.tipx.beta, result.tipx.gamma]).toEqual([REFERENCE.alpha, REFERENCE.beta, REFERENCE.gamma]);
    // The same kind of queries without the guard (the eval's label-peeking tuner) take the best grid point.
    const terms = Array.from({ length: M }, (_, j) => queryTermsOf({ embed: F.data.subarray(j * D, (j + 1) * D), patches: patches[j]! }, labels[j]!, W, support));
    const free = searchGrids(terms, support, false), held = searchGrids(terms, support);
    expect(free.calip.accuracy).toBeGreaterThan(held.calip.accuracy);
    expect([free.calip.beta2, free.calip.beta3]).not.toEqual([REFERENCE.beta2, REFERENCE.beta3]);
  });

  it('is deterministic and caps queries with a stratified subset', async () => {
    const labels = Int32Array.from({ length: 50 }, (_, i) => (i < 40 ? 0 : 1 + (i % 2)));
    const q = chooseQueries(labels, 3, 9);
    expect(q).toHaveLength(9);
    expect(new Set(q.map((j) => labels[j])).size).toBe(3);
    const W = randomUnitRows(3, 8, 51), F = randomUnitRows(50, 8, 52);
    const support = prepareSupport(F, labels, W);
    expect(await tuneHyperparameters(W, support, { maxQueries: 9 })).toEqual(await tuneHyperparameters(W, support, { maxQueries: 9 }));
  });
});

describe('native products for the tuner', () => {
  it('onnxruntime-node A Bᵀ equals the JavaScript kernel (1e-4) and gives the same tuning', async () => {
    const { nativeGemm } = await import('../indexer/native-gemm.js');
    const { matMulABt } = await import('../core/linalg.js');
    const gemm = await nativeGemm();
    const a = randomUnitRows(37, 24, 1), b = randomUnitRows(53, 24, 2);
    const native = await gemm(a, b), js = matMulABt(a, b);
    expect(native.rows * native.cols).toBe(37 * 53);
    for (let i = 0; i < js.data.length; i++) expect(Math.abs(native.data[i]! - js.data[i]!)).toBeLessThan(1e-4);
    const W = randomUnitRows(4, 8, 3), F = randomUnitRows(40, 8, 4);
    const support = prepareSupport(F, Int32Array.from({ length: 40 }, (_, i) => i % 4), W);
    const r1 = await tuneHyperparameters(W, support), r2 = await tuneHyperparameters(W, support, { gemm });
    expect(r2.tipx.looAccuracy).toBeCloseTo(r1.tipx.looAccuracy, 6);
  });
});
