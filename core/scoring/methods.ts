// The four classification methods behind one call, and the combined method
// (beyond the papers): CALIP's three terms plus TIP-X's two support-set terms.
import { matVec, type Matrix } from '../linalg.js';
import { CALIP_DEFAULTS, calipLogitsFromTerms, calipTerms, type CalipParams, type CalipTerms } from './calip.js';
import { addTipx, supportClassifier, tipxAffinities, tipxTerms, type SupportSet, type TipxParams } from './tipx.js';
import { LOGIT_SCALE } from './zeroshot.js';

export const METHODS = ['clip', 'calip', 'tipx', 'combined'] as const;
export type Method = (typeof METHODS)[number];

export type HyperParams = CalipParams & TipxParams;

/** Without a support set: CALIP's published values, α = γ = 0. */
export const DEFAULT_PARAMS: HyperParams = { ...CALIP_DEFAULTS, alpha: 0, beta: 1, gamma: 0 };

/** An index's hyperparameters without a support set to tune on. */
export const DEFAULT_HYPERPARAMETERS = {
  source: 'defaults' as const,
  params: { calip: { beta2: DEFAULT_PARAMS.beta2, beta3: DEFAULT_PARAMS.beta3 }, tipx: { alpha: 0, beta: DEFAULT_PARAMS.beta, gamma: 0 }, combined: DEFAULT_PARAMS },
};

export interface ImageFeatures {
  /** Normalised image embedding [D]. */
  embed: Float32Array;
  /** Normalised patch embeddings [HW,D] (CALIP and combined). */
  patches?: Matrix;
}

export class ScoringError extends Error {}

/** Products computed elsewhere (on onnxruntime, see pipeline.ts); whatever is absent is computed here. */
export interface Precomputed {
  calip?: CalipTerms;
  /** F·[f; Wᵀp]ᵀ [M,2] (tipx.ts). */
  supportProducts?: Float32Array;
}

/** The parameters each method scores with, from an index's chosen ones. */
export function methodParams(method: Method, chosen: { calip: CalipParams; tipx: TipxParams; combined: HyperParams }): HyperParams {
  if (method === 'calip') return { ...DEFAULT_PARAMS, ...chosen.calip, alpha: 0, gamma: 0 };
  if (method === 'tipx') return { ...DEFAULT_PARAMS, ...chosen.tipx };
  if (method === 'combined') return chosen.combined;
  return DEFAULT_PARAMS;
}

export function scoreImage(method: Method, image: ImageFeatures, W: Matrix, support: SupportSet | null, params: HyperParams, precomputed: Precomputed = {}): Float32Array {
  const needsPatches = method === 'calip' || method === 'combined';
  const needsSupport = method === 'tipx' || method === 'combined';
  if (needsPatches && !image.patches) throw new ScoringError(`method ${method} needs patch embeddings`);
  if (needsSupport && !support) throw new ScoringError(`method ${method} needs a support set`);
  let base: Float32Array;
  let fDotW: Float32Array;
  if (needsPatches) {
    const terms = precomputed.calip ?? calipTerms(image.embed, image.patches!, W);
    fDotW = terms.clip;
    base = calipLogitsFromTerms(terms, params);
  } else {
    fDotW = matVec(W, image.embed); // the same product calipTerms makes, so β2 = β3 = 0 is CLIP bit for bit
    base = fDotW.map((v) => LOGIT_SCALE * v);
  }
  if (!needsSupport) return base;
  // The support set covers the index's own classes, the first rows of W; classes added at
  // request time (labels=) come after them and get no TIP-X terms.
  const Ws = supportClassifier(W, support!);
  const { affinity, kl } = tipxAffinities(image.embed, fDotW.subarray(0, Ws.rows), Ws, support!, precomputed.supportProducts);
  return addTipx(base, tipxTerms(affinity, kl, support!, params.beta), params);
}
