import { describe, expect, it } from 'vitest';
import { matrix, normalizeRows } from '../core/linalg.js';
import { defaultShortSide, SegmentationAccumulator, slidingWindows } from '../core/scoring/segment.js';

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
