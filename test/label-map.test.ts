// The label map as people see it: colours that tell classes apart, run lengths, the palette PNG.
import { decode as decodePng } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { labelPng, palette, runLengths } from '../core/label-map.js';

const hue = ([r, g, b]: [number, number, number]) => {
  const max = Math.max(r, g, b), min = Math.min(r, g, b), d = max - min;
  if (d === 0) return NaN;
  const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  return (h * 60 + 360) % 360;
};

describe('legend colours', () => {
  it('no two classes of an index up to 20 share a hue within 360 / (2 × classes) degrees; background is grey', () => {
    for (const C of [3, 8, 9, 12, 20]) {
      const colours = palette(['background', ...Array.from({ length: C - 1 }, (_, i) => `class ${i}`)]);
      expect(Number.isNaN(hue(colours[0]!))).toBe(true);
      const hues = colours.slice(1).map(hue);
      for (let a = 0; a < hues.length; a++)
        for (let b = a + 1; b < hues.length; b++) {
          const d = Math.abs(hues[a]! - hues[b]!), apart = Math.min(d, 360 - d);
          expect(apart, `${C} classes: ${a} and ${b}`).toBeGreaterThanOrEqual(360 / (2 * C));
        }
    }
  });

  it('run lengths and the palette PNG hold the same labels', () => {
    const labels = Uint16Array.of(0, 0, 1, 1, 1, 2, 0, 0);
    expect(runLengths(labels)).toEqual([0, 2, 1, 3, 2, 1, 0, 2]);
    const png = decodePng(labelPng(labels, 4, 2, palette(['a', 'b', 'c'])));
    expect(Array.from(png.data)).toEqual(Array.from(labels));
  });
});
