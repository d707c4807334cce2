import { describe, expect, it } from 'vitest';
import { matrix, normalizeRows } from '../core/linalg.js';
import { pamr } from '../core/scoring/pamr.js';
import { defaultShortSide, labelsFromMaps, QUERY_CHUNK, SegmentationAccumulator, slidingWindows } from '../core/scoring/segment.js';

describe('sliding windows (mmseg slide inference)', () => {
  it('stride S/2, last window aligned to the edge', () => {
    // 336x224 with 224 windows, stride 112: lefts 0, 112 (=336−224); one row.
    expect(slidingWindows(336, 224, 224, 112)).toEqual([{ left: 0, top: 0 }, { left: 112, top: 0 }]);
    // 300 wide: 0, then min(112+224, 300) − 224 = 76; duplicates removed.
    expect(slidingWindows(300, 224, 224, 112).map((w) => w.left)).toEqual([0, 76]);
    expect(slidingWindows(64, 64, 64, 32)).toEqual([{ left: 0, top: 0 }]);
    expect(defaultShortSide(224)).toBe(336);
    expect(() => slidingWindows(100, 50, 64, 32)).toThrow(/smaller/);
  });
});

describe('segmentation maps from patch features', () => {
  // Two classes along the x axis of a 2-D embedding: left patches look like class 0, right like class 1.
  const queries = normalizeRows(matrix(Float32Array.of(1, 0, 0, 1, 0.9, 0.1), 3, 2)); // class 0 has two synonyms
  const queryClass = Int32Array.of(0, 1, 0);
  const G = 4, S = 16;
  const patches = normalizeRows(matrix(Float32Array.from({ length: G * G * 2 }, (_, i) => {
    const p = i >> 1, x = p % G;
    return (i & 1) === 0 ? (x < 2 ? 1 : 0.05) : x < 2 ? 0.05 : 1;
  }), G * G, 2));

  it('labels the left half class 0 and the right half class 1, at any output size', () => {
    const acc = new SegmentationAccumulator(S, S, S, G, queries);
    acc.addWindow({ left: 0, top: 0 }, patches);
    const labels = acc.labels(32, 20, queryClass, 2);
    expect(labels).toHaveLength(32 * 20);
    for (let y = 0; y < 20; y++) {
      expect(labels[y * 32 + 2]).toBe(0);
      expect(labels[y * 32 + 29]).toBe(1);
    }
  });

  it('averages overlapping windows', () => {
    // Two windows over a 24-wide image; the overlap gets both, so nothing is left uncovered.
    const acc = new SegmentationAccumulator(24, 16, 16, G, queries);
    for (const w of slidingWindows(24, 16, 16, 8)) acc.addWindow(w, patches);
    const labels = acc.labels(24, 16, queryClass, 2);
    expect(labels[0]).toBe(0);
    expect(labels[23]).toBe(1);
  });

  it('probability threshold sends unsure pixels to background; area threshold removes tiny classes', () => {
    const flat = normalizeRows(matrix(Float32Array.from({ length: G * G * 2 }, () => 1), G * G, 2)); // equally like both
    const acc = new SegmentationAccumulator(S, S, S, G, queries);
    acc.addWindow({ left: 0, top: 0 }, flat);
    const withBackground = acc.labels(S, S, Int32Array.of(0, 1, 2), 3, { probThreshold: 0.9, backgroundClass: 2 });
    expect(new Set(withBackground)).toEqual(new Set([2]));
    const acc2 = new SegmentationAccumulator(S, S, S, G, queries);
    acc2.addWindow({ left: 0, top: 0 }, patches);
    const kept = acc2.labels(S, S, queryClass, 3, { areaThreshold: 0.4, backgroundClass: 2 });
    expect(new Set(kept)).toEqual(new Set([0, 1])); // both halves are 50 % of foreground
    const removed = acc2.labels(S, S, queryClass, 3, { areaThreshold: 0.6, backgroundClass: 2 });
    expect(new Set(removed)).toEqual(new Set([2]));
    expect(() => acc2.labels(S, S, queryClass, 2, { probThreshold: 0.5 })).toThrow(/background class/);
  });

  it('refuses to label pixels no window covered', () => {
    const acc = new SegmentationAccumulator(32, 16, 16, G, queries);
    acc.addWindow({ left: 0, top: 0 }, patches);
    expect(() => acc.labels(32, 16, queryClass, 2)).toThrow(/cover/);
  });
});

describe('class maps at the output size (the path PAMR takes)', () => {
  it('decide each pixel as the streaming path does', () => {
    const queries = normalizeRows(matrix(Float32Array.of(1, 0, 0, 1, 0.9, 0.1), 3, 2));
    const G = 4, S = 16;
    const patches = normalizeRows(matrix(Float32Array.from({ length: G * G * 2 }, (_, i) => Math.sin(i * 1.7) + 1.2), G * G, 2));
    const acc = new SegmentationAccumulator(24, 16, S, G, queries);
    for (const w of slidingWindows(24, 16, S, 8)) acc.addWindow(w, patches);
    const options = { probThreshold: 0.6, backgroundClass: 2 };
    expect(labelsFromMaps(acc.cosineMaps(30, 20), 3, Int32Array.of(0, 1, 0), 3, options)).toEqual(acc.labels(30, 20, Int32Array.of(0, 1, 0), 3, options));
  });

  it(`more queries than one chunk (${QUERY_CHUNK}): the online softmax decides as the full one, thresholds included`, () => {
    const Q = 2 * QUERY_CHUNK + 7, D = 6, G = 4, S = 16;
    const queries = normalizeRows(matrix(Float32Array.from({ length: Q * D }, (_, i) => Math.sin(i * 0.91)), Q, D));
    const queryClass = Int32Array.from({ length: Q }, (_, q) => 1 + (q % 20)); // 20 classes with synonyms, 0 = background
    const acc = new SegmentationAccumulator(24, 16, S, G, queries);
    for (const [k, w] of slidingWindows(24, 16, S, 8).entries()) acc.addWindow(w, normalizeRows(matrix(Float32Array.from({ length: G * G * D }, (_, i) => Math.cos(i * 0.37 + k)), G * G, D)));
    const plain = acc.labels(31, 19, queryClass, 21);
    expect(new Set(plain).size).toBeGreaterThan(2); // a real map, not one class everywhere
    for (const options of [{}, { probThreshold: 0.5, backgroundClass: 0 }, { areaThreshold: 0.1, backgroundClass: 0 }]) {
      const online = acc.labels(31, 19, queryClass, 21, options);
      expect(online).toEqual(labelsFromMaps(acc.cosineMaps(31, 19), Q, queryClass, 21, options));
    }
  });
});

describe('PAMR (pixel-adaptive mask refinement)', () => {
  it('hand-worked: on a flat image every neighbour weighs 1/8, so one step on a 3×3 spike gives 9/8 around it and 0 at its centre', () => {
    const image = new Float32Array(3 * 9).fill(0.5);
    const spike = Float32Array.of(0, 0, 0, 0, 9, 0, 0, 0, 0);
    // Each border pixel has the centre as exactly one of its 8 (replicated) neighbours; the centre has none.
    expect(Array.from(pamr(image, spike, 3, 3, { steps: 1, dilations: [1] }))).toEqual([9 / 8, 9 / 8, 9 / 8, 9 / 8, 0, 9 / 8, 9 / 8, 9 / 8, 9 / 8]);
  });

  it('equals a literal port of pamr.py (torch ops one by one) within 1e-5', () => {
    const W = 5, H = 4, Q = 2, dilations = [1, 2], steps = 3;
    const image = Float32Array.from({ length: 3 * W * H }, (_, i) => Math.sin(i * 0.77) * 2);
    const maps = Float32Array.from({ length: Q * W * H }, (_, i) => Math.cos(i * 1.3));
    const got = pamr(image, maps, W, H, { steps, dilations });
    expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - pamrPort(image, maps, W, H, dilations, steps)[i]!)))).toBeLessThan(1e-5);
  });
});

/** pamr.py, op by op: replicate-padded dilated 3×3 shifts, std over 9·d positions (unbiased), mean over channels, softmax, iterations. */
function pamrPort(image: Float32Array, maps: Float32Array, W: number, H: number, dilations: number[], steps: number): number[] {
  const px = (plane: Float32Array | number[], c: number, y: number, x: number) => plane[c * W * H + Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))]!;
  const shifts = [[0, 0], [0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1], [2, 2]]; // kernel positions of the −1 (LocalAffinity) / copy entries
  const all9 = [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]];
  const aff: number[][] = []; // [pixel][neighbour]
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const perChannel: number[][] = [];
      for (let c = 0; c < 3; c++) {
        const around = dilations.flatMap((d) => all9.map(([ky, kx]) => px(image, c, y + (ky! - 1) * d, x + (kx! - 1) * d)));
        const mean = around.reduce((a, b) => a + b, 0) / around.length;
        const std = Math.sqrt(around.reduce((a, b) => a + (b - mean) ** 2, 0) / (around.length - 1));
        perChannel.push(dilations.flatMap((d) => shifts.map(([ky, kx]) => -Math.abs(px(image, c, y, x) - px(image, c, y + (ky! - 1) * d, x + (kx! - 1) * d)) / (1e-8 + 0.1 * std))));
      }
      const meanOverChannels = perChannel[0]!.map((_, k) => (perChannel[0]![k]! + perChannel[1]![k]! + perChannel[2]![k]!) / 3);
      const m = Math.max(...meanOverChannels);
      const e = meanOverChannels.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, b) => a + b, 0);
      aff.push(e.map((v) => v / sum));
    }
  let mask = Array.from(maps);
  const Q = maps.length / (W * H);
  for (let s = 0; s < steps; s++) {
    const next: number[] = [];
    for (let q = 0; q < Q; q++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const neighbours = dilations.flatMap((d) => shifts.map(([ky, kx]) => px(mask, q, y + (ky! - 1) * d, x + (kx! - 1) * d)));
          next.push(neighbours.reduce((a, v, k) => a + v * aff[y * W + x]![k]!, 0));
        }
    mask = next;
  }
  return mask;
}
