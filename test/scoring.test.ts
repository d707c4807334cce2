import { describe, expect, it } from 'vitest';
import { matrix, normalize, type Matrix } from '../core/linalg.js';
import { randomUnitRows } from './helpers.js';
import { CALIP_DEFAULTS, calipLogits } from '../core/scoring/calip.js';
import { textClassifier } from '../core/scoring/classifier.js';
import { DEFAULT_PARAMS, scoreImage } from '../core/scoring/methods.js';
import { prepareSupport, rescaleKl, tipxAffinities, tipxLogits } from '../core/scoring/tipx.js';
import { clipLogits } from '../core/scoring/zeroshot.js';

// ---- Independent references: the formulas exactly as written, explicit matrices, float64. ----
const rowsOf = (m: Matrix) => Array.from({ length: m.rows }, (_, i) => Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)));
const dotN = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const softmax = (x: number[]) => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

function naiveCalip(f: number[], Fs: number[][], W: number[][], beta2: number, beta3: number): number[] {
  const S = Fs.map((p) => W.map((w) => 2 * dotN(p, w))); // [HW,C]
  const C = W.length, D = f.length, HW = Fs.length;
  const Ft = W.map((_, c) => {
    const a = softmax(S.map((r) => r[c]!)); // over HW
    return Array.from({ length: D }, (_, d) => Fs.reduce((s, p, hw) => s + a[hw]! * p[d]!, 0));
  });
  const FsPrime = S.map((r) => {
    const b = softmax(r); // over C
    return Array.from({ length: D }, (_, d) => W.reduce((s, w, c) => s + b[c]! * w[d]!, 0));
  });
  const fv = Array.from({ length: D }, (_, d) => FsPrime.reduce((s, r) => s + r[d]!, 0) / HW + Math.max(...FsPrime.map((r) => r[d]!)));
  return Array.from({ length: C }, (_, c) => 100 * (dotN(f, W[c]!) + beta2 * dotN(f, Ft[c]!) + beta3 * dotN(fv, W[c]!)));
}

function naiveTipx(f: number[], W: number[][], F: number[][], y: number[], alpha: number, beta: number, gamma: number): number[] {
  const C = W.length;
  const L = y.map((c) => Array.from({ length: C }, (_, k) => (k === c ? 1 : 0)));
  const A = F.map((s) => dotN(f, s));
  const p = softmax(W.map((w) => dotN(f, w) / 0.5));
  const kl = F.map((s) => {
    const q = softmax(W.map((w) => dotN(s, w) / 0.5));
    return p.reduce((sum, pc, c) => sum + pc * (Math.log(pc) - Math.log(q[c]!)), 0);
  });
  const [kMin, kMax, aMin, aMax] = [Math.min(...kl), Math.max(...kl), Math.min(...A), Math.max(...A)];
  const psi = kl.map((k) => aMin + ((k - kMin) / (kMax - kMin)) * (aMax - aMin));
  return Array.from({ length: C }, (_, c) =>
    100 * dotN(f, W[c]!) + alpha * A.reduce((s, a, j) => s + Math.exp(-beta * (1 - a)) * L[j]![c]!, 0) + gamma * psi.reduce((s, v, j) => s - v * L[j]![c]!, 0),
  );
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(tol);
};

describe('CLIP zero-shot and the text classifier', () => {
  it('logits = 100 · f Wᵀ, worked by hand', () => {
    const W = matrix(Float32Array.of(1, 0, 0.6, 0.8), 2, 2);
    close(clipLogits(Float32Array.of(1, 0), W), [100, 60], 1e-4);
    close(clipLogits(Float32Array.of(0.6, 0.8), W), [60, 100], 1e-4);
  });

  it('classifier: normalise each prompt, average, normalise the mean', () => {
    // class 0: prompts (2,0) and (0,3) -> units (1,0),(0,1) -> mean (.5,.5) -> (1/√2, 1/√2); class 1: (0,-5) -> (0,-1).
    const W = textClassifier(matrix(Float32Array.of(2, 0, 0, 3, 0, -5), 3, 2), [2, 1]);
    close(W.data, [Math.SQRT1_2, Math.SQRT1_2, 0, -1], 1e-6);
  });
});

describe('CALIP (Guo et al. 2023)', () => {
  const W = randomUnitRows(5, 8, 1), Fs = randomUnitRows(6, 8, 2), f = randomUnitRows(1, 8, 3).data;

  it('matches the formula written out with explicit matrices (float32 vs float64, tol 1e-3 logits)', () => {
    for (const [b2, b3] of [[1.12, 0.02], [3, 0.5], [0, 0.3]] as const) {
      close(calipLogits(f, Fs, W, { beta2: b2, beta3: b3 }), naiveCalip([...f], rowsOf(Fs), rowsOf(W), b2, b3), 1e-3);
    }
  });

  it('worked by hand: one patch, two classes', () => {
    // Fs = [f]: softmax over one patch is 1, so Ft'_c = f and f·Ft'_c = 1;
    // Fs' = softmax_C(2·f·W) W; fv' = mean + max = 2·Fs'.
    const W2 = matrix(Float32Array.of(1, 0, 0, 1), 2, 2), f2 = Float32Array.of(1, 0);
    const b = softmax([2, 0]);
    const fv = [2 * b[0]!, 2 * b[1]!];
    close(calipLogits(f2, matrix(f2, 1, 2), W2, { beta2: 1, beta3: 1 }), [100 * (1 + 1 + fv[0]!), 100 * (0 + 1 + fv[1]!)], 1e-3);
  });

  it('with β2 = β3 = 0 equals CLIP exactly', () => {
    expect(Array.from(calipLogits(f, Fs, W, { beta2: 0, beta3: 0 }))).toEqual(Array.from(clipLogits(f, W)));
  });
});

describe('TIP-X (Udandarao et al. 2023)', () => {
  const C = 4, D = 8;
  const W = randomUnitRows(C, D, 11), F = randomUnitRows(12, D, 12), f = randomUnitRows(1, D, 13).data;
  const labels = Int32Array.from({ length: 12 }, (_, i) => i % C);
  const support = prepareSupport(F, labels, W);

  it('matches the formula with one-hot L and explicit signatures (balanced set: exact formula, tol 1e-3)', () => {
    for (const [alpha, beta, gamma] of [[1, 5.5, 1], [20, 1, 0.3], [0.1, 50, 30]] as const) {
      close(tipxLogits(f, W, support, { alpha, beta, gamma }), naiveTipx([...f], rowsOf(W), rowsOf(F), [...labels], alpha, beta, gamma), 1e-3);
    }
  });

  it('with α = γ = 0 equals CLIP', () => {
    close(tipxLogits(f, W, support, { alpha: 0, beta: 5, gamma: 0 }), clipLogits(f, W), 1e-9);
  });

  it('KL ≥ 0, and 0 for a support image identical to the test image', () => {
    const withSelf = prepareSupport(matrix(Float32Array.from([...F.data, ...f]), 13, D), Int32Array.from([...labels, 0]), W);
    const fDotW = clipLogits(f, W).map((v) => v / 100);
    const { kl, affinity } = tipxAffinities(f, fDotW, W, withSelf);
    for (const v of kl) expect(v).toBeGreaterThanOrEqual(0);
    expect(kl[12]).toBeLessThan(1e-5);
    expect(affinity[12]).toBeCloseTo(1, 5);
  });

  it('ψ maps KL min-max onto [min A, max A] of this image alone', () => {
    const psi = rescaleKl(Float32Array.of(0, 1, 3), Float32Array.of(0.2, 0.5, 0.8));
    close(psi, [0.2, 0.4, 0.8], 1e-6);
  });

  it('unbalanced support: repeating a class’s images does not favour it (per-class mean, scaled by the mean class size)', () => {
    const base = prepareSupport(F, labels, W);
    // Class 1 gets every one of its images three times: 6 extra images.
    const extra = [...labels.keys()].filter((j) => labels[j] === 1);
    const rows = [...labels.keys(), ...extra, ...extra];
    const Fbig = matrix(Float32Array.from(rows.flatMap((j) => [...F.data.subarray(j * D, (j + 1) * D)])), rows.length, D);
    const unbalanced = prepareSupport(Fbig, Int32Array.from(rows, (j) => labels[j]!), W);
    const params = { alpha: 3, beta: 5.5, gamma: 1 };
    const a = tipxLogits(f, W, base, params), b = tipxLogits(f, W, unbalanced, params);
    // Mean class size changes (3 -> 4.5): every class's support terms scale by the same 1.5.
    const clip = clipLogits(f, W);
    close(b.map((v, c) => v - clip[c]!), a.map((v, c) => 1.5 * (v - clip[c]!)), 1e-3);
  });
});

describe('methods', () => {
  const W = randomUnitRows(6, 16, 21), F = randomUnitRows(18, 16, 22);
  const support = prepareSupport(F, Int32Array.from({ length: 18 }, (_, i) => i % 6), W);
  const image = { embed: randomUnitRows(1, 16, 23).data, patches: randomUnitRows(9, 16, 24) };

  it('combined = CALIP logits + TIP-X support terms', () => {
    const params = { ...CALIP_DEFAULTS, alpha: 2, beta: 5, gamma: 0.5 };
    const calip = scoreImage('calip', image, W, null, params);
    const tipx = scoreImage('tipx', image, W, support, params);
    const clip = scoreImage('clip', image, W, null, params);
    const combined = scoreImage('combined', image, W, support, params);
    close(combined, calip.map((v, c) => v + tipx[c]! - clip[c]!), 1e-3);
  });

  it('refuses a method whose inputs are missing', () => {
    expect(() => scoreImage('calip', { embed: image.embed }, W, null, DEFAULT_PARAMS)).toThrow(/patch embeddings/);
    expect(() => scoreImage('tipx', image, W, null, DEFAULT_PARAMS)).toThrow(/support set/);
  });

  it('normalize() makes unit vectors', () => {
    expect(Math.hypot(...normalize(Float32Array.of(3, 4)))).toBeCloseTo(1, 6);
  });
});

describe('log-signature normalisers', () => {
  it('log q rebuilt from lse_j is the log-softmax of F_j Wᵀ / τ, written out (tol 1e-4)', async () => {
    const { logSignatures } = await import('../core/scoring/tipx.js');
    const W = randomUnitRows(10, 16, 61), F = randomUnitRows(40, 16, 62);
    const support = prepareSupport(F, Int32Array.from({ length: 40 }, (_, i) => i % 10), W);
    const logQ = logSignatures(support, W);
    for (let j = 0; j < 40; j++) {
      const q = softmax(rowsOf(W).map((w) => dotN(Array.from(F.data.subarray(j * 16, (j + 1) * 16)), w) / 0.5));
      q.forEach((v, c) => expect(Math.abs(logQ.data[j * 10 + c]! - Math.log(v))).toBeLessThan(1e-4));
    }
  });
});

describe('CALIP on onnxruntime', () => {
  it.each(['node', 'wasm'] as const)('CalipGraph (%s) equals the JavaScript CALIP terms within 1e-4', async (runtime) => {
    const { CalipGraph } = await import('../core/scoring/calip-graph.js');
    const { calipTerms } = await import('../core/scoring/calip.js');
    const { ortFor } = await import('../models/load-model.js');
    const W = randomUnitRows(37, 32, 71), Fs = randomUnitRows(49, 32, 72), f = randomUnitRows(1, 32, 73).data;
    const graph = await CalipGraph.create(await ortFor(runtime), W);
    const fast = await graph.terms(f, Fs), ref = calipTerms(f, Fs, W);
    close(fast.clip, ref.clip, 1e-4);
    close(fast.visualGuidedText, ref.visualGuidedText, 1e-4);
    close(fast.textAwareVisual, ref.textAwareVisual, 1e-4);
  });
});

describe('TIP-X support pass on onnxruntime', () => {
  it.each(['node', 'wasm'] as const)('SupportGraph (%s) products give the JavaScript TIP-X logits (1e-3)', async (runtime) => {
    const { SupportGraph } = await import('../core/scoring/support-graph.js');
    const { tipxProbes } = await import('../core/scoring/tipx.js');
    const { ortFor } = await import('../models/load-model.js');
    const W = randomUnitRows(9, 32, 81), F = randomUnitRows(45, 32, 82), f = randomUnitRows(1, 32, 83).data;
    const support = prepareSupport(F, Int32Array.from({ length: 45 }, (_, i) => i % 9), W);
    const graph = await SupportGraph.create(await ortFor(runtime), F);
    const supportProducts = await graph.products(tipxProbes(f, clipLogits(f, W).map((v) => v / 100), W).probes);
    const params = { ...CALIP_DEFAULTS, alpha: 3, beta: 5.5, gamma: 2 };
    close(scoreImage('tipx', { embed: f }, W, support, params, { supportProducts }), scoreImage('tipx', { embed: f }, W, support, params), 1e-3);
  });
});
