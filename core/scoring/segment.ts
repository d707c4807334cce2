// Zero-shot semantic segmentation maps from CSA patch features (SCLIP; Wang et al.,
// ECCV 2024, Sec. 4 / official slide inference): sliding windows over the image
// resized to a short side, cosine maps per window, bilinear upsampling, averaging of
// overlaps, bilinear resize to the original size, softmax over queries, max over
// each class's synonyms, optional background thresholds.
import { shortestSideSize } from '../image.js';
import { matMulABt, type Matrix } from '../linalg.js';

export interface Window {
  left: number;
  top: number;
}

/** SCLIP's default: short side 336 for a 224 model, i.e. 1.5 × the input size. */
export function defaultShortSide(imageSize: number): number {
  return Math.round(1.5 * imageSize);
}

/** Segmentation squeezes images more elongated than this (the whole image stays in view). */
export const MAX_SEGMENT_ASPECT = 4;

/**
 * Where a segmentation works: the short side resized to `requested` (at least the model's input
 * size; default 1.5 ×), the long side at most MAX_SEGMENT_ASPECT times that (a 1024×1 strip would
 * otherwise become 344,064 × 336 pixels and thousands of windows), and its sliding windows.
 */
export function segmentLayout(width: number, height: number, imageSize: number, requested?: number): { shortSide: number; width: number; height: number; windows: Window[] } {
  const shortSide = Math.max(imageSize, requested ?? defaultShortSide(imageSize));
  const [w0, h0] = shortestSideSize(width, height, shortSide);
  const w = Math.min(w0, MAX_SEGMENT_ASPECT * h0), h = Math.min(h0, MAX_SEGMENT_ASPECT * w0);
  return { shortSide, width: w, height: h, windows: slidingWindows(w, h, imageSize, Math.max(1, Math.floor(imageSize / 2))) };
}

/** Windows of size×size at `stride`, the last one aligned to the edge (mmseg slide_inference). */
export function slidingWindows(width: number, height: number, size: number, stride: number): Window[] {
  if (width < size || height < size) throw new Error(`image ${width}x${height} is smaller than the ${size}px window`);
  const starts = (extent: number) => {
    const n = Math.max(extent - size + stride - 1, 0) / stride;
    const out: number[] = [];
    for (let i = 0; i <= Math.floor(n); i++) out.push(Math.max(Math.min(i * stride + size, extent) - size, 0));
    return [...new Set(out)];
  };
  const windows: Window[] = [];
  for (const top of starts(height)) for (const left of starts(width)) windows.push({ left, top });
  return windows;
}

/** Source coordinate and weights for bilinear resampling with align_corners = false. */
function bilinearTaps(outSize: number, inSize: number): { i0: Int32Array; i1: Int32Array; w1: Float32Array } {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), w1 = new Float32Array(outSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const src = Math.max((o + 0.5) * scale - 0.5, 0);
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, inSize - 1);
    w1[o] = src - lo;
  }
  return { i0, i1, w1 };
}

/** SCLIP's prob_thd for benchmarks with a background class: under it a pixel is background. */
export const SEGMENT_PROB_THRESHOLD = 0.1;

export interface SegmentationOptions {
  /** Softmax temperature over queries (SCLIP: 40). */
  logitScale?: number;
  /** Pixels whose top class probability is below this become background. */
  probThreshold?: number;
  /** Foreground classes covering less than this fraction of foreground pixels become background. */
  areaThreshold?: number;
  /** Class index used for background (required by the thresholds). */
  backgroundClass?: number;
}

/** Queries whose working-size maps exist at one time: memory is this many maps, whatever the class count. */
export const QUERY_CHUNK = 16;

/**
 * Per-window cosine maps over the resized image. Windows keep their [Q, G*G] cosines; the
 * working-size maps (bilinear upsampling, averaged where windows overlap) are built
 * QUERY_CHUNK queries at a time, so a 1,000-class index needs 16 maps of memory, not 1,000.
 */
export class SegmentationAccumulator {
  private readonly windows: { window: Window; cos: Float32Array }[] = [];
  private readonly count: Uint16Array;
  readonly queries: number;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly windowSize: number,
    readonly grid: number,
    private readonly queryEmbeds: Matrix,
  ) {
    this.queries = queryEmbeds.rows;
    this.count = new Uint16Array(width * height);
  }

  /** patches: normalised patch embeddings of one window [G*G,D]. */
  addWindow(window: Window, patches: Matrix): void {
    this.windows.push({ window, cos: matMulABt(this.queryEmbeds, patches).data }); // [Q, G*G]
    const S = this.windowSize;
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) this.count[(window.top + y) * this.width + window.left + x]!++;
  }

  /** Averaged working-size maps of queries [q0, q1), [(q1 − q0), height*width]. */
  private maps(q0: number, q1: number): Float32Array {
    const G = this.grid, S = this.windowSize, plane = this.width * this.height;
    const out = new Float32Array((q1 - q0) * plane);
    const taps = bilinearTaps(S, G);
    for (const { window, cos } of this.windows) {
      for (let y = 0; y < S; y++) {
        const y0 = taps.i0[y]!, y1 = taps.i1[y]!, wy = taps.w1[y]!;
        const row = (window.top + y) * this.width + window.left;
        for (let x = 0; x < S; x++) {
          const x0 = taps.i0[x]!, x1 = taps.i1[x]!, wx = taps.w1[x]!;
          for (let q = q0; q < q1; q++) {
            const o = q * G * G;
            const top = cos[o + y0 * G + x0]! * (1 - wx) + cos[o + y0 * G + x1]! * wx;
            const bottom = cos[o + y1 * G + x0]! * (1 - wx) + cos[o + y1 * G + x1]! * wx;
            out[(q - q0) * plane + row + x]! += top * (1 - wy) + bottom * wy;
          }
        }
      }
    }
    for (let q = 0; q < q1 - q0; q++) for (let i = 0; i < plane; i++) out[q * plane + i]! /= this.count[i]!;
    return out;
  }

  private checkCovered(): void {
    for (let i = 0; i < this.width * this.height; i++) if (this.count[i] === 0) throw new Error('segmentation windows do not cover the image');
  }

  /** Calls `visit(q, its map at the output size)` for every query, chunk by chunk (bilinear, align_corners = false). */
  private resized(outWidth: number, outHeight: number, visit: (q: number, cos: Float32Array) => void): void {
    this.checkCovered();
    const plane = this.width * this.height;
    const xs = bilinearTaps(outWidth, this.width), ys = bilinearTaps(outHeight, this.height);
    const cos = new Float32Array(outWidth * outHeight);
    for (let q0 = 0; q0 < this.queries; q0 += QUERY_CHUNK) {
      const q1 = Math.min(this.queries, q0 + QUERY_CHUNK), maps = this.maps(q0, q1);
      for (let q = q0; q < q1; q++) {
        const m = maps.subarray((q - q0) * plane, (q - q0 + 1) * plane);
        for (let y = 0; y < outHeight; y++) {
          const r0 = ys.i0[y]! * this.width, r1 = ys.i1[y]! * this.width, wy = ys.w1[y]!;
          for (let x = 0; x < outWidth; x++) {
            const x0 = xs.i0[x]!, x1 = xs.i1[x]!, wx = xs.w1[x]!;
            cos[y * outWidth + x] = (m[r0 + x0]! * (1 - wx) + m[r0 + x1]! * wx) * (1 - wy) + (m[r1 + x0]! * (1 - wx) + m[r1 + x1]! * wx) * wy;
          }
        }
        visit(q, cos);
      }
    }
  }

  /**
   * Label map [outHeight*outWidth] of class indices, without per-class maps at the output size:
   * an online softmax per pixel (running max logit, rescaled sum, best query). The best class is
   * the best query's (a class scores the max over its synonyms' probabilities, which share one
   * denominator), and its probability is 1 / sum, for the threshold.
   */
  labels(outWidth: number, outHeight: number, queryClass: Int32Array, numClasses: number, options: SegmentationOptions = {}): Uint16Array {
    const { logitScale = 40, probThreshold, backgroundClass } = checkThresholds(options);
    const n = outWidth * outHeight;
    const max = new Float32Array(n).fill(-Infinity), sum = new Float64Array(n), best = new Int32Array(n);
    this.resized(outWidth, outHeight, (q, cos) => {
      for (let i = 0; i < n; i++) {
        const l = logitScale * cos[i]!;
        if (l > max[i]! || (l === max[i] && queryClass[q]! < queryClass[best[i]!]!)) {
          sum[i] = sum[i]! * Math.exp(max[i]! - l) + 1;
          max[i] = l;
          best[i] = q;
        } else sum[i]! += Math.exp(l - max[i]!);
      }
    });
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = probThreshold !== undefined && 1 / sum[i]! < probThreshold ? backgroundClass! : queryClass[best[i]!]!;
    return applyAreaThreshold(out, numClasses, options);
  }

  /** The averaged cosine maps resized to the output size, [Q, outHeight*outWidth] (for PAMR). */
  cosineMaps(outWidth: number, outHeight: number): Float32Array {
    const n = outWidth * outHeight, out = new Float32Array(this.queries * n);
    this.resized(outWidth, outHeight, (q, cos) => out.set(cos, q * n));
    return out;
  }
}

function checkThresholds(options: SegmentationOptions): SegmentationOptions {
  if ((options.probThreshold !== undefined || options.areaThreshold !== undefined) && options.backgroundClass === undefined) {
    throw new Error('probThreshold and areaThreshold need a background class');
  }
  return options;
}

/** Label map from per-query cosine maps [Q, n] (after PAMR), as `labels` decides each pixel. */
export function labelsFromMaps(maps: Float32Array, Q: number, queryClass: Int32Array, numClasses: number, options: SegmentationOptions = {}): Uint16Array {
  const n = maps.length / Q;
  const decide = pixelDecision(Q, queryClass, numClasses, options);
  const out = new Uint16Array(n), cos = new Float64Array(Q);
  for (let i = 0; i < n; i++) {
    for (let q = 0; q < Q; q++) cos[q] = maps[q * n + i]!;
    out[i] = decide(cos);
  }
  return applyAreaThreshold(out, numClasses, options);
}

/**
 * One pixel: softmax over queries of logitScale · cosine, each class the max over its synonyms'
 * probabilities, the best class; background where its probability is under probThreshold (SCLIP).
 */
function pixelDecision(Q: number, queryClass: Int32Array, numClasses: number, options: SegmentationOptions): (cos: Float64Array) => number {
  const { logitScale = 40, probThreshold, backgroundClass } = checkThresholds(options);
  const logits = new Float64Array(Q), classProb = new Float64Array(numClasses);
  return (cos) => {
    let max = -Infinity;
    for (let q = 0; q < Q; q++) max = Math.max(max, (logits[q] = logitScale * cos[q]!));
    let sum = 0;
    for (let q = 0; q < Q; q++) sum += logits[q] = Math.exp(logits[q]! - max);
    classProb.fill(0);
    for (let q = 0; q < Q; q++) classProb[queryClass[q]!] = Math.max(classProb[queryClass[q]!]!, logits[q]! / sum);
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (classProb[c]! > classProb[best]!) best = c;
    return probThreshold !== undefined && classProb[best]! < probThreshold ? backgroundClass! : best;
  };
}

/** Foreground classes covering less than areaThreshold of the foreground pixels become background. */
function applyAreaThreshold(out: Uint16Array, numClasses: number, { areaThreshold, backgroundClass }: SegmentationOptions): Uint16Array {
  if (areaThreshold === undefined) return out;
  const area = new Float64Array(numClasses);
  let foreground = 0;
  for (const c of out) if (c !== backgroundClass) (area[c]!++, foreground++);
  for (let i = 0; i < out.length; i++) if (out[i] !== backgroundClass && area[out[i]!]! < areaThreshold * foreground) out[i] = backgroundClass!;
  return out;
}
