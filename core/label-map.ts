// A segmentation's label map as people and programs receive it: a palette, run lengths, a
// palette PNG, an overlay on the image. Shared by the Worker and the CLI.
import { encode as encodePng } from 'fast-png';
import type { RgbImage } from './image.js';

export type Rgb = [number, number, number];

/** Distinct colours for up to a few hundred classes (golden-angle hues); background grey. */
export function palette(names: string[]): Rgb[] {
  return names.map((name, i) => {
    if (name === 'background') return [96, 96, 96];
    const h = (i * 137.508) % 360, s = 0.65, l = 0.55;
    const f = (n: number) => {
      const k = (n + h / 30) % 12;
      return Math.round(255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
    };
    return [f(0), f(8), f(4)];
  });
}

/** [label, run length, label, run length, ...] in row-major order. */
export function runLengths(labels: Uint16Array): number[] {
  const runs: number[] = [];
  for (let i = 0; i < labels.length; ) {
    let j = i;
    while (j < labels.length && labels[j] === labels[i]) j++;
    runs.push(labels[i]!, j - i);
    i = j;
  }
  return runs;
}

/** The label map as an 8-bit palette PNG (at most 256 classes). */
export function labelPng(labels: Uint16Array, width: number, height: number, colours: Rgb[]): Uint8Array {
  if (colours.length > 256) throw new Error('a palette PNG holds at most 256 classes; use rle or json');
  return encodePng({ width, height, data: Uint8Array.from(labels), channels: 1, depth: 8, palette: colours });
}

/** The image with each pixel's class colour blended over it (`opacity` of the colour). */
export function overlayPng(image: RgbImage, labels: Uint16Array, colours: Rgb[], opacity = 0.5): Uint8Array {
  const out = new Uint8Array(image.data.length);
  for (let i = 0; i < labels.length; i++) {
    const colour = colours[labels[i]!]!;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round((1 - opacity) * image.data[i * 3 + c]! + opacity * colour[c]!);
  }
  return encodePng({ width: image.width, height: image.height, data: out, channels: 3, depth: 8 });
}
