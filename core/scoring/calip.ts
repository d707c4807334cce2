// CALIP: parameter-free attention (Guo et al., AAAI 2023, Sec. 3.2, Eqs. 3-7).
// Spatial visual features Fs and text features W attend to each other with no
// learned weights; the updated features add two terms to the CLIP logits.
import { matMulABt, matVec, softmaxInPlace, transpose, type Matrix } from '../linalg.js';
import { LOGIT_SCALE } from './zeroshot.js';

export interface CalipParams {
  beta2: number;
  beta3: number;
}

/** Published ImageNet values: the zero-shot defaults when nothing can be tuned. */
export const CALIP_DEFAULTS: CalipParams = { beta2: 1.12, beta3: 0.02 };

/** Attention temperature: the official code multiplies Fs Wᵀ by 2. */
const ATTENTION_SCALE = 2;

export interface CalipTerms {
  /** f Wᵀ [C] */
  clip: Float32Array;
  /** f Ft'ᵀ [C] (visual-guided text, Eq. 5) */
  visualGuidedText: Float32Array;
  /** fv' Wᵀ [C] (text-aware visual, Eqs. 6-7) */
  textAwareVisual: Float32Array;
}

/**
 * f: normalised image embedding [D]; Fs: normalised patch embeddings [HW,D]; W: [C,D].
 * A = Fs Wᵀ, S = 2A; Ft' = softmax_HW(S)ᵀ Fs; Fs' = softmax_C(S) W; fv' = mean_HW(Fs') + max_HW(Fs').
 */
export function calipTerms(f: Float32Array, Fs: Matrix, W: Matrix): CalipTerms {
  const HW = Fs.rows, C = W.rows, D = W.cols;
  if (Fs.cols !== D || f.length !== D) throw new Error(`calip: dims differ (f ${f.length}, Fs ${Fs.cols}, W ${D})`);
  const S = matMulABt(Fs, W).data; // A = Fs Wᵀ [HW,C]; S = 2A below
  const fDotPatch = matVec(Fs, f); // f · Fs[hw]
  const clip = matVec(W, f);
  // f · Ft'_c = Σ_hw softmax_HW(S[:,c])[hw] (f · Fs[hw]): no need to form Ft'.
  const visualGuidedText = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let max = -Infinity;
    for (let p = 0; p < HW; p++) max = Math.max(max, ATTENTION_SCALE * S[p * C + c]!);
    let sum = 0, acc = 0;
    for (let p = 0; p < HW; p++) {
      const e = Math.exp(ATTENTION_SCALE * S[p * C + c]! - max);
      sum += e;
      acc += e * fDotPatch[p]!;
    }
    visualGuidedText[c] = acc / sum;
  }
  // Fs' = softmax_C(S) W [HW,D]; fv' = mean_HW(Fs') + element-wise max_HW(Fs').
  for (let p = 0; p < HW; p++) softmaxInPlace(S, p * C, C, ATTENTION_SCALE);
  const fsPrime = matMulABt({ data: S, rows: HW, cols: C }, transposed(W)).data;
  const fv = new Float32Array(D);
  for (let d = 0; d < D; d++) {
    let mean = 0, max = -Infinity;
    for (let p = 0; p < HW; p++) {
      const v = fsPrime[p * D + d]!;
      mean += v;
      if (v > max) max = v;
    }
    fv[d] = mean / HW + max;
  }
  return { clip, visualGuidedText, textAwareVisual: matVec(W, fv) };
}

/** Wᵀ, computed once per classifier (the same W scores every request). */
const transposeCache = new WeakMap<Float32Array, Matrix>();
function transposed(W: Matrix): Matrix {
  let t = transposeCache.get(W.data);
  if (!t) transposeCache.set(W.data, (t = transpose(W)));
  return t;
}

/** Eq. 7: logits = 100·(β1 f Wᵀ + β2 f Ft'ᵀ + β3 fv' Wᵀ), β1 = 1. */
export function calipLogitsFromTerms(t: CalipTerms, params: CalipParams): Float32Array {
  return t.clip.map((v, c) => LOGIT_SCALE * (v + params.beta2 * t.visualGuidedText[c]! + params.beta3 * t.textAwareVisual[c]!));
}

export function calipLogits(f: Float32Array, Fs: Matrix, W: Matrix, params: CalipParams = CALIP_DEFAULTS): Float32Array {
  return calipLogitsFromTerms(calipTerms(f, Fs, W), params);
}
