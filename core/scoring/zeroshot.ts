// CLIP zero-shot classification (Radford et al. 2021, Sec. 3.1.2):
// logits = logit_scale · f Wᵀ with f and the rows of W L2-normalised.
import { matVec, type Matrix } from '../linalg.js';

export const LOGIT_SCALE = 100;

/** f: normalised image embedding [D]; W: normalised text classifier [C,D] -> [C]. */
export function clipLogits(f: Float32Array, W: Matrix): Float32Array {
  return matVec(W, f).map((v) => LOGIT_SCALE * v);
}
