// TIP-X (Udandarao et al., SuS-X, ICCV 2023, Sec. 3.2, Eqs. 4-8): scores an image
// against a labelled support set with image-image affinities (Tip-Adapter's cache)
// and the similarity of class-probability signatures (KL divergence).
import { dequantizeRowsU8, rowsU8Dot, type RowsU8 } from '../compact.js';
import { dot, logSoftmax, matVec, type Matrix } from '../linalg.js';
import { LOGIT_SCALE } from './zeroshot.js';

export interface TipxParams {
  alpha: number;
  beta: number;
  gamma: number;
}

/** Signature temperature τ (no ×100), as SuS-X. */
export const SIGNATURE_TEMPERATURE = 0.5;

/**
 * The support set as the indexer stores it. `logQ` holds the log signatures
 * log softmax(F_j Wᵀ / τ) of every support image, precomputed once.
 */
export interface SupportSet {
  /** F [M,D], rows L2-normalised. */
  features: Matrix;
  /** y [M], class index of each support image. */
  labels: Int32Array;
  /** log q [M,C]: float32 in the indexer, per-row uint8 as stored in the index (4× smaller, faster). */
  logQ: Matrix | RowsU8;
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
export function prepareSupport(features: Matrix, labels: Int32Array, W: Matrix): SupportSet & { logQ: Matrix } {
  if (features.rows !== labels.length) throw new Error(`support: ${features.rows} features but ${labels.length} labels`);
  const C = W.rows;
  const logQ = new Float32Array(features.rows * C);
  const logits = new Float32Array(C);
  for (let j = 0; j < features.rows; j++) {
    for (let c = 0; c < C; c++) logits[c] = dot(features.data, j * features.cols, W.data, c * W.cols, W.cols);
    logQ.set(logSoftmax(logits, 1 / SIGNATURE_TEMPERATURE), j * C);
  }
  return { features, labels, logQ: { data: logQ, rows: features.rows, cols: C }, weights: classBalanceWeights(labels, C), numClasses: C };
}

export interface TipxTerms {
  /** exp(−β(1 − A)) · L [C] for the β it was computed with. */
  cache: Float32Array;
  /** (−ψ(KL)) · L [C]. */
  signature: Float32Array;
}

/** Affinities A = f Fᵀ [M] and KL_j = Σ_c p_c (log p_c − log q_jc) [M]. */
export function tipxAffinities(f: Float32Array, fDotW: Float32Array, support: SupportSet): { affinity: Float32Array; kl: Float32Array } {
  const M = support.features.rows, C = support.numClasses, D = support.features.cols;
  const affinity = matVec(support.features, f);
  const logP = logSoftmax(fDotW, 1 / SIGNATURE_TEMPERATURE);
  const p = logP.map(Math.exp);
  let negEntropy = 0;
  for (let c = 0; c < C; c++) negEntropy += p[c]! * logP[c]!;
  const crossEntropy = 'values' in support.logQ ? rowsU8Dot(support.logQ, p) : matVec(support.logQ, p);
  const kl = crossEntropy.map((ce) => Math.max(0, negEntropy - ce));
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

/** Eq. 8 (with ψ per image): logits = base + α·cache + γ·(−ψ(KL))·L. */
export function addTipx(base: Float32Array, terms: TipxTerms, params: TipxParams): Float32Array {
  return base.map((v, c) => v + params.alpha * terms.cache[c]! + params.gamma * terms.signature[c]!);
}

/** TIP-X over CLIP: f normalised [D], W [C,D]. */
export function tipxLogits(f: Float32Array, W: Matrix, support: SupportSet, params: TipxParams): Float32Array {
  const fDotW = new Float32Array(W.rows);
  for (let c = 0; c < W.rows; c++) fDotW[c] = dot(f, 0, W.data, c * W.cols, W.cols);
  const { affinity, kl } = tipxAffinities(f, fDotW, support);
  return addTipx(fDotW.map((v) => LOGIT_SCALE * v), tipxTerms(affinity, kl, support, params.beta), params);
}

/** log q as a float matrix (the tuner's batched products need one). */
export function logQMatrix(support: SupportSet): Matrix {
  return 'values' in support.logQ ? dequantizeRowsU8(support.logQ) : support.logQ;
}
