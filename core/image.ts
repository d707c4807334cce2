// Image preprocessing as HF CLIPImageProcessor does it with PIL: resize the shortest
// side to S (PIL's separable resampling, antialiased when downscaling), centre crop,
// scale to [0,1], normalise with mean/std. Pure TypeScript: runs in Node and workerd.

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved RGB, 8 bits per channel. */
  data: Uint8Array;
}

export type ResampleFilter = 'bicubic' | 'bilinear';

export interface PreprocessSpec {
  resizeShortest: number;
  cropSize: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  resample: ResampleFilter;
}

const FILTERS: Record<ResampleFilter, { support: number; kernel: (x: number) => number }> = {
  // PIL's bicubic uses a = -0.5.
  bicubic: {
    support: 2,
    kernel: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: { support: 1, kernel: (x) => Math.max(0, 1 - Math.abs(x)) },
};

/** PIL ImagingResample coefficients for one axis (precompute_coeffs in Resample.c). */
function coefficients(inSize: number, outSize: number, filter: ResampleFilter): { start: Int32Array; count: Int32Array; weights: Float64Array; taps: number } {
  const { support: baseSupport, kernel } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = baseSupport * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const wgt = kernel((i - center + 0.5) / filterScale);
      weights[o * taps + i - lo] = wgt;
      sum += wgt;
    }
    if (sum !== 0) for (let i = 0; i < hi - lo; i++) weights[o * taps + i]! /= sum;
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, taps };
}

const clip8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** Resize like PIL `Image.resize` (horizontal pass, then vertical, 8-bit in between). */
export function resize(img: RgbImage, width: number, height: number, filter: ResampleFilter): RgbImage {
  if (width === img.width && height === img.height) return img;
  const h = coefficients(img.width, width, filter);
  const tmp = new Uint8Array(width * img.height * 3);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      const s = h.start[x]!;
      for (let k = 0; k < h.count[x]!; k++) {
        const w = h.weights[x * h.taps + k]!;
        const p = (y * img.width + s + k) * 3;
        r += w * img.data[p]!;
        g += w * img.data[p + 1]!;
        b += w * img.data[p + 2]!;
      }
      const q = (y * width + x) * 3;
      tmp[q] = clip8(r);
      tmp[q + 1] = clip8(g);
      tmp[q + 2] = clip8(b);
    }
  }
  const v = coefficients(img.height, height, filter);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = v.start[y]!;
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < v.count[y]!; k++) {
        const w = v.weights[y * v.taps + k]!;
        const p = ((s + k) * width + x) * 3;
        r += w * tmp[p]!;
        g += w * tmp[p + 1]!;
        b += w * tmp[p + 2]!;
      }
      const q = (y * width + x) * 3;
      out[q] = clip8(r);
      out[q + 1] = clip8(g);
      out[q + 2] = clip8(b);
    }
  }
  return { width, height, data: out };
}

/** HF get_resize_output_image_size(default_to_square=False): short side -> S, long side truncated. */
export function shortestSideSize(width: number, height: number, shortest: number): [number, number] {
  if (width <= height) return [shortest, Math.trunc((shortest * height) / width)];
  return [Math.trunc((shortest * width) / height), shortest];
}

export function crop(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  if (left < 0 || top < 0 || left + width > img.width || top + height > img.height) {
    throw new Error(`crop ${width}x${height}+${left}+${top} is outside the ${img.width}x${img.height} image`);
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) out.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + width) * 3), y * width * 3);
  return { width, height, data: out };
}

export function centerCrop(img: RgbImage, size: number): RgbImage {
  return crop(img, Math.floor((img.width - size) / 2), Math.floor((img.height - size) / 2), size, size);
}

/** uint8 RGB -> float32 [3,H,W] channel-major, (v/255 − mean)/std. */
export function normalize(img: RgbImage, mean: readonly number[], std: readonly number[]): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[c * n + i] = (img.data[i * 3 + c]! / 255 - mean[c]!) / std[c]!;
  return out;
}

/** Classification keeps at most this aspect ratio of the source (see preprocess). */
export const MAX_CLASSIFY_ASPECT = 4;

/**
 * The full CLIP preprocessing: returns pixel_values for one image, [3,S,S]. An image more
 * elongated than 4:1 is first cut to its central 4:1 part, which holds all the centre crop
 * sees and the filter's margin: a 65535×1 strip would otherwise resize to 14,680,064 × 224.
 */
export function preprocess(img: RgbImage, spec: PreprocessSpec): Float32Array {
  const short = Math.min(img.width, img.height), maxLong = MAX_CLASSIFY_ASPECT * short;
  if (img.width > maxLong) img = crop(img, Math.floor((img.width - maxLong) / 2), 0, maxLong, img.height);
  else if (img.height > maxLong) img = crop(img, 0, Math.floor((img.height - maxLong) / 2), img.width, maxLong);
  const [w, h] = shortestSideSize(img.width, img.height, spec.resizeShortest);
  return normalize(centerCrop(resize(img, w, h, spec.resample), spec.cropSize), spec.mean, spec.std);
}
