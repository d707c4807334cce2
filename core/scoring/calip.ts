// CALIP: parameter-free attention (Guo et al., AAAI 2023, Sec. 3.2, Eqs. 3-7).
// Spatial visual features Fs and text features W attend to each other with no
// learned weights; the updated features add two terms to the CLIP logits.
import { type Matrix } from '../linalg.js';
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
  const S = new Float64Array(HW * C); // [HW,C]
  const fDotPatch = new Float64Array(HW); // f · Fs[hw]
  for (let p = 0; p < HW; p++) {
    const po = p * D;
    let g = 0;
    for (let d = 0; d < D; d++) g += f[d]! * Fs.data[po + d]!;
    fDotPatch[p] = g;
    for (let c = 0; c < C; c++) {
      const co = c * D;
      let s = 0;
      for (let d = 0; d < D; d++) s += Fs.data[po + d]! * W.data[co + d]!;
      S[p * C + c] = ATTENTION_SCALE * s;
    }
  }
  // f · Ft'_c = Σ_hw softmax_HW(S[:,c])[hw] (f · Fs[hw]): no need to form Ft'.
  const visualGuidedText = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let max = -Infinity;
    for (let p = 0; p < HW; p++) max = Math.max(max, S[p * C + c]!);
    let sum = 0, acc = 0;
    for (let p = 0; p < HW; p++) {
      const e = Math.exp(S[p * C + c]! - max);
      sum += e;
      acc += e * fDotPatch[p]!;
    }
    visualGuidedText[c] = acc / sum;
  }
  // Fs'[hw] = Σ_c softmax_C(S[hw,:])[c] W_c, then fv' = mean + element-wise max over hw.
  const mean = new Float64Array(D);
  const max = new Float64Array(D).fill(-Infinity);
  const fsPrime = new Float64Array(D);
  const weights = new Float64Array(C);
  for (let p = 0; p < HW; p++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, S[p * C + c]!);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += weights[c] = Math.exp(S[p * C + c]! - m);
    fsPrime.fill(0);
    for (let c = 0; c < C; c++) {
      const w = weights[c]! / sum, co = c * D;
      for (let d = 0; d < D; d++) fsPrime[d]! += w * W.data[co + d]!;
    }
    for (let d = 0; d < D; d++) {
      mean[d]! += fsPrime[d]! / HW;
      if (fsPrime[d]! > max[d]!) max[d] = fsPrime[d]!;
    }
  }
  const clip = new Float32Array(C);
  const textAwareVisual = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const co = c * D;
    let a = 0, b = 0;
    for (let d = 0; d < D; d++) {
      a += f[d]! * W.data[co + d]!;
      b += (mean[d]! + max[d]!) * W.data[co + d]!;
    }
    clip[c] = a;
    textAwareVisual[c] = b;
  }
  return { clip, visualGuidedText, textAwareVisual };
}

/** Eq. 7: logits = 100·(β1 f Wᵀ + β2 f Ft'ᵀ + β3 fv' Wᵀ), β1 = 1. */
export function calipLogitsFromTerms(t: CalipTerms, params: CalipParams): Float32Array {
  return t.clip.map((v, c) => LOGIT_SCALE * (v + params.beta2 * t.visualGuidedText[c]! + params.beta3 * t.textAwareVisual[c]!));
}

export function calipLogits(f: Float32Array, Fs: Matrix, W: Matrix, params: CalipParams = CALIP_DEFAULTS): Float32Array {
  return calipLogitsFromTerms(calipTerms(f, Fs, W), params);
}
