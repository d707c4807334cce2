// Scores a person can trust, from the support set alone (beyond the papers). Temperature
// scaling (Guo et al., ICML 2017): one temperature T per method, fitted by minimising the
// negative log-likelihood of softmax(logits / T) over the support set's leave-one-out logits.
// "None of these": a threshold on the calibrated top probability, set between the support
// set's leave-one-out scores (in-class) and those of images of no class.
import { softmaxInPlace } from '../linalg.js';

/** Mean negative log-likelihood of the labels under softmax(logits / T). */
export function meanNll(logits: Float32Array[], labels: ArrayLike<number>, temperature: number): number {
  let total = 0;
  logits.forEach((row, i) => {
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v / temperature);
    let sum = 0;
    for (const v of row) sum += Math.exp(v / temperature - max);
    total += max + Math.log(sum) - row[labels[i]!]! / temperature;
  });
  return total / logits.length;
}

/**
 * The temperature minimising meanNll. The NLL is convex in 1/T, so a golden-section search over
 * 1/T in [1e-3, 50] finds it; T = 1 when there is nothing to fit.
 */
export function fitTemperature(logits: Float32Array[], labels: ArrayLike<number>): { temperature: number; nllBefore: number; nllAfter: number } {
  if (logits.length === 0) return { temperature: 1, nllBefore: NaN, nllAfter: NaN };
  const f = (inverse: number) => meanNll(logits, labels, 1 / inverse);
  const phi = (Math.sqrt(5) - 1) / 2;
  let lo = 1e-3, hi = 50;
  let x1 = hi - phi * (hi - lo), x2 = lo + phi * (hi - lo), f1 = f(x1), f2 = f(x2);
  for (let i = 0; i < 80; i++) {
    if (f1 < f2) {
      hi = x2, x2 = x1, f2 = f1;
      x1 = hi - phi * (hi - lo), f1 = f(x1);
    } else {
      lo = x1, x1 = x2, f1 = f2;
      x2 = lo + phi * (hi - lo), f2 = f(x2);
    }
  }
  const inverse = (lo + hi) / 2;
  return { temperature: 1 / inverse, nllBefore: f(1), nllAfter: f(inverse) };
}

/** softmax(logits / T). */
export function calibratedProbabilities(logits: Float32Array, temperature = 1): Float64Array {
  const out = Float64Array.from(logits);
  softmaxInPlace(out, 0, out.length, 1 / temperature);
  return out;
}

/** The top of softmax(logits / T): the answer's probability. */
export function topProbability(logits: Float32Array, temperature = 1): number {
  return Math.max(...calibratedProbabilities(logits, temperature));
}

/** Expected calibration error over `bins` equal-width bins of the top probability (15, as Guo et al.). */
export function expectedCalibrationError(topProbability: ArrayLike<number>, correct: ArrayLike<boolean>, bins = 15): number {
  const n = topProbability.length, count = new Float64Array(bins), confidence = new Float64Array(bins), right = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const b = Math.min(bins - 1, Math.floor(topProbability[i]! * bins));
    count[b]!++;
    confidence[b]! += topProbability[i]!;
    if (correct[i]) right[b]!++;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]) ece += Math.abs(right[b]! - confidence[b]!) / n;
  return ece;
}

/** Nearest-rank quantile. */
function quantile(xs: ArrayLike<number>, q: number): number {
  const sorted = Array.from(xs).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * The top-probability threshold under which an answer is "none of these": above 95 % of the
 * images of no class, but never above the support set's 5th percentile (leave-one-out): reject
 * what looks like nothing, and at most 5 % of what the support set says is a class. Midway
 * between the two when they are apart. (Leave-one-out scores on generated support are easier than
 * real images, so the threshold leans on the images of no class rather than on them.)
 */
export function rejectionThreshold(inClass: ArrayLike<number>, outOfClass: ArrayLike<number>): { threshold: number; keptInClass: number; rejectedOutOfClass: number } {
  const lowIn = quantile(inClass, 0.05);
  const highOut = outOfClass.length ? quantile(outOfClass, 0.95) : 0;
  const threshold = highOut < lowIn ? (highOut + lowIn) / 2 : lowIn;
  const kept = Array.from(inClass).filter((p) => p >= threshold).length / inClass.length;
  const rejected = outOfClass.length ? Array.from(outOfClass).filter((p) => p < threshold).length / outOfClass.length : 0;
  return { threshold, keptInClass: kept, rejectedOutOfClass: rejected };
}
