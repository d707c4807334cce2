// Pixel-adaptive mask refinement (PAMR; Araslanov & Roth, CVPR 2020, Sec. 3.2), as SCLIP and
// NACLIP apply it to segmentation logits (their pamr.py): for each pixel, affinities to its 8
// neighbours at each dilation from the image, κ = softmax over neighbours of the channel mean of
// −|I(p) − I(q)| / (1e-8 + 0.1·σ(p)), σ the unbiased standard deviation of the image over the
// 3×3 dilated neighbourhoods (centre included, all dilations together); then `steps` times,
// every map becomes the κ-weighted sum of its neighbours. Borders replicate.

export interface PamrOptions {
  steps: number;
  dilations: number[];
}

/** SCLIP's recipe (pamr_steps = 10, pamr_stride = (8, 16)). */
export const PAMR_DEFAULTS: PamrOptions = { steps: 10, dilations: [8, 16] };

/** The 8 neighbour offsets of pamr.py's LocalAffinity kernel, in its order: [dy, dx]. */
const NEIGHBOURS = [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]] as const;

/**
 * image: [3, H, W] (normalised pixels); maps: [Q, H, W]. Returns the refined maps (a new array).
 * Memory: 8 · dilations affinities per pixel and two copies of the maps.
 */
export function pamr(image: Float32Array, maps: Float32Array, width: number, height: number, options: PamrOptions = PAMR_DEFAULTS): Float32Array {
  const n = width * height, K = NEIGHBOURS.length * options.dilations.length, Q = maps.length / n;
  // Neighbour index of every pixel for every (dilation, offset), borders replicated.
  const neighbour = new Int32Array(K * n);
  options.dilations.forEach((d, di) =>
    NEIGHBOURS.forEach(([dy, dx], k) => {
      for (let y = 0; y < height; y++) {
        const ny = Math.min(height - 1, Math.max(0, y + dy * d));
        for (let x = 0; x < width; x++) neighbour[(di * NEIGHBOURS.length + k) * n + y * width + x] = ny * width + Math.min(width - 1, Math.max(0, x + dx * d));
      }
    }),
  );
  const affinity = new Float32Array(K * n);
  const values = new Float64Array(K + options.dilations.length);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      const plane = c * n, centre = image[plane + p]!;
      // σ over the 9 positions of each dilation (the centre once per dilation), unbiased.
      let m = 0;
      for (let k = 0; k < K; k++) m += values[k] = image[plane + neighbour[k * n + p]!]!;
      for (let d = 0; d < options.dilations.length; d++) m += values[K + d] = centre;
      m /= values.length;
      let v = 0;
      for (const x of values) v += (x - m) * (x - m);
      const sigma = Math.sqrt(v / (values.length - 1));
      for (let k = 0; k < K; k++) affinity[k * n + p] = affinity[k * n + p]! - Math.abs(centre - values[k]!) / (1e-8 + 0.1 * sigma) / 3;
    }
    let max = -Infinity, sum = 0;
    for (let k = 0; k < K; k++) max = Math.max(max, affinity[k * n + p]!);
    for (let k = 0; k < K; k++) sum += affinity[k * n + p] = Math.exp(affinity[k * n + p]! - max);
    for (let k = 0; k < K; k++) affinity[k * n + p]! /= sum;
  }
  let current = Float32Array.from(maps), next = new Float32Array(maps.length);
  for (let step = 0; step < options.steps; step++) {
    for (let q = 0; q < Q; q++) {
      const from = current.subarray(q * n, (q + 1) * n), to = next.subarray(q * n, (q + 1) * n);
      for (let p = 0; p < n; p++) {
        let v = 0;
        for (let k = 0; k < K; k++) v += affinity[k * n + p]! * from[neighbour[k * n + p]!]!;
        to[p] = v;
      }
    }
    [current, next] = [next, current];
  }
  return current;
}

/** Bytes a refinement allocates for an image of n pixels and Q maps: the normalised image, the
 * maps at the image size, pamr's neighbour indices and affinities, its two copies of the maps. */
export function pamrBytes(n: number, Q: number, options: PamrOptions = PAMR_DEFAULTS): number {
  const K = NEIGHBOURS.length * options.dilations.length;
  return 12 * n + 8 * K * n + 3 * 4 * Q * n;
}
