// TIP-X (Udandarao et al., SuS-X, ICCV 2023, Sec. 3.2, Eqs. 4-8): scores an image
// against a labelled support set with image-image affinities (Tip-Adapter's cache)
// and the similarity of class-probability signatures (KL divergence).
import { dot, logSoftmax, matMulABt, type Matrix } from '../linalg.js';
import { LOGIT_SCALE } from './zeroshot.js';

export interface TipxParams {
  alpha: number;
  beta: number;
  gamma: number;
}

/** Signature temperature τ (no ×100), as SuS-X. */
export const SIGNATURE_TEMPERATURE = 0.5;

/**
 * The support set as the index stores it. Instead of the log signatures log q [M,C] we
 * keep their normalisers: log q_jc = F_j·W_c/τ − lse_j with lse_j = logsumexp_c(F_j·W_c/τ),
 * so Σ_c p_c log q_jc = (Wᵀp)·F_j/τ − lse_j (Σ_c p_c = 1). Exact, C times smaller, and a
 * request needs one pass over F for both the affinities and the KL divergences.
 */
export interface SupportSet {
  /** F [M,D], rows L2-normalised. */
  features: Matrix;
  /** y [M], class index of each support image. */
  labels: Int32Array;
  /** lse_j [M]: log of the softmax normaliser of F_j Wᵀ / τ. */
  logNorm: Float32Array;
  /**
   * Weight of each support image in the one-hot L: K̄/K_c, with K_c the images of its
   * class and K̄ the mean over classes that have images. Balanced sets: all 1, so the
   * result equals the paper's formula exactly; unbalanced: each class contributes its
   * mean affinity times K̄, so a class with more images is not favoured.
   */
  weights: Float32Array;
  numClasses: number;
}

export function classBalanceWeights(labels: Int32Array, numClasses: number): Float32Array {
  const counts = new Float64Array(numClasses);
  for (const y of labels) {
    if (y < 0 || y >= numClasses) throw new Error(`support label ${y} is outside 0..${numClasses - 1}`);
    counts[y]!++;
  }
  const present = counts.filter((n) => n > 0);
  const meanCount = present.reduce((a, b) => a + b, 0) / Math.max(1, present.length);
  return Float32Array.from(labels, (y) => meanCount / counts[y]!);
}

/** Precomputation for the indexer: features normalised by the caller, W [C,D]. */
export function prepareSupport(features: Matrix, labels: Int32Array, W: Matrix): SupportSet {
  if (features.rows !== labels.length) throw new Error(`support: ${features.rows} features but ${labels.length} labels`);
  const M = features.rows, C = W.rows, D = W.cols;
  const logNorm = new Float32Array(M);
  const block = 256;
  for (let start = 0; start < M; start += block) {
    const rows = Math.min(block, M - start);
    const logits = matMulABt({ data: features.data.subarray(start * D, (start + rows) * D), rows, cols: D }, W).data;
    for (let r = 0; r < rows; r++) {
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, logits[r * C + c]! / SIGNATURE_TEMPERATURE);
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(logits[r * C + c]! / SIGNATURE_TEMPERATURE - max);
      logNorm[start + r] = max + Math.log(sum);
    }
  }
  return { features, labels, logNorm, weights: classBalanceWeights(labels, C), numClasses: C };
}

/** log q [M,C] written out (the tuner's batched products and tests). */
export function logSignatures(support: SupportSet, W: Matrix): Matrix {
  const logits = matMulABt(support.features, W);
  const C = W.rows;
  for (let j = 0; j < support.features.rows; j++) for (let c = 0; c < C; c++) logits.data[j * C + c] = logits.data[j * C + c]! / SIGNATURE_TEMPERATURE - support.logNorm[j]!;
  return logits;
}

export interface TipxTerms {
  /** exp(−β(1 − A)) · L [C] for the β it was computed with. */
  cache: Float32Array;
  /** (−ψ(KL)) · L [C]. */
  signature: Float32Array;
}

/** The two vectors a request projects the support features on, [f; Wᵀp], and Σ p log p. */
export function tipxProbes(f: Float32Array, fDotW: Float32Array, W: Matrix): { probes: Matrix; negEntropy: number } {
  const C = W.rows, D = W.cols;
  const logP = logSoftmax(fDotW, 1 / SIGNATURE_TEMPERATURE);
  const p = logP.map(Math.exp);
  let negEntropy = 0;
  for (let c = 0; c < C; c++) negEntropy += p[c]! * logP[c]!;
  const probes = new Float32Array(2 * D);
  probes.set(f);
  for (let c = 0; c < C; c++) for (let d = 0; d < D; d++) probes[D + d]! += p[c]! * W.data[c * D + d]!;
  return { probes: { data: probes, rows: 2, cols: D }, negEntropy };
}

/**
 * Affinities A = f Fᵀ [M] and KL_j = Σ_c p_c (log p_c − log q_jc) [M], in one pass over F.
 * `products`: F·[f; Wᵀp]ᵀ [M,2] computed elsewhere (SupportGraph); otherwise computed here.
 */
export function tipxAffinities(f: Float32Array, fDotW: Float32Array, W: Matrix, support: SupportSet, products?: Float32Array): { affinity: Float32Array; kl: Float32Array } {
  const M = support.features.rows;
  const { probes, negEntropy } = tipxProbes(f, fDotW, W);
  const both = products ?? matMulABt(support.features, probes).data; // [M,2]
  const affinity = new Float32Array(M);
  const kl = new Float32Array(M);
  for (let j = 0; j < M; j++) {
    affinity[j] = both[2 * j]!;
    kl[j] = Math.max(0, negEntropy - (both[2 * j + 1]! / SIGNATURE_TEMPERATURE - support.logNorm[j]!));
  }
  return { affinity, kl };
}

/**
 * ψ: min-max rescale of this image's KL vector onto [min_j A_j, max_j A_j].
 * Deliberate deviation from the paper, which rescales over the whole test batch:
 * here an image's scores depend on that image alone.
 */
export function rescaleKl(kl: Float32Array, affinity: Float32Array, skip = -1): Float32Array {
  let klMin = Infinity, klMax = -Infinity, aMin = Infinity, aMax = -Infinity;
  for (let j = 0; j < kl.length; j++) {
    if (j === skip) continue;
    klMin = Math.min(klMin, kl[j]!);
    klMax = Math.max(klMax, kl[j]!);
    aMin = Math.min(aMin, affinity[j]!);
    aMax = Math.max(aMax, affinity[j]!);
  }
  const span = klMax - klMin;
  return kl.map((v) => (span > 0 ? aMin + ((v - klMin) / span) * (aMax - aMin) : aMin));
}

/** The two support terms, summed per class with the balance weights; `skip` leaves one image out. */
export function tipxTerms(affinity: Float32Array, kl: Float32Array, support: SupportSet, beta: number, skip = -1): TipxTerms {
  const C = support.numClasses;
  const psi = rescaleKl(kl, affinity, skip);
  const cache = new Float32Array(C);
  const signature = new Float32Array(C);
  for (let j = 0; j < affinity.length; j++) {
    if (j === skip) continue;
    const y = support.labels[j]!, w = support.weights[j]!;
    cache[y]! += w * Math.exp(-beta * (1 - affinity[j]!));
    signature[y]! -= w * psi[j]!;
  }
  return { cache, signature };
}

/**
 * Eq. 8 (with ψ per image): logits = base + α·cache + γ·(−ψ(KL))·L. Classes past the support set's
 * (labels added at request time) keep their base logit.
 */
export function addTipx(base: Float32Array, terms: TipxTerms, params: TipxParams): Float32Array {
  return base.map((v, c) => (c < terms.cache.length ? v + params.alpha * terms.cache[c]! + params.gamma * terms.signature[c]! : v));
}

/** The rows of W the support set's classes are (all of W unless labels were added at request time). */
export function supportClassifier(W: Matrix, support: SupportSet): Matrix {
  const C = support.numClasses;
  return C === W.rows ? W : { data: W.data.subarray(0, C * W.cols), rows: C, cols: W.cols };
}

/** TIP-X over CLIP: f normalised [D], W [C,D]. */
export function tipxLogits(f: Float32Array, W: Matrix, support: SupportSet, params: TipxParams): Float32Array {
  const fDotW = new Float32Array(W.rows);
  for (let c = 0; c < W.rows; c++) fDotW[c] = dot(f, 0, W.data, c * W.cols, W.cols);
  const { affinity, kl } = tipxAffinities(f, fDotW, W, support);
  return addTipx(fDotW.map((v) => LOGIT_SCALE * v), tipxTerms(affinity, kl, support, params.beta), params);
}
