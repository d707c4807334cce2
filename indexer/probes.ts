// Images of no class, for the "none of these" threshold: flat colours, gradients and noise at
// the model's input size. Model- and domain-agnostic: they stand for a photo of nothing (an
// empty background, a lens cap, sensor noise).
import { encode as encodePng } from 'fast-png';
import { rng } from '../eval/shapes-world.js';

export function outOfClassProbes(size: number, count = 24): Uint8Array[] {
  const out: Uint8Array[] = [];
  const random = rng(0x5eed);
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(size * size * 3);
    const a = Array.from({ length: 3 }, () => Math.floor(random() * 256)), b = Array.from({ length: 3 }, () => Math.floor(random() * 256));
    for (let p = 0; p < size * size; p++) {
      const x = (p % size) / size, y = Math.floor(p / size) / size;
      for (let c = 0; c < 3; c++) {
        const kind = i % 3; // flat, gradient, noise
        data[p * 3 + c] = kind === 0 ? a[c]! : kind === 1 ? Math.round(a[c]! + (b[c]! - a[c]!) * (i % 2 ? x : y)) : Math.floor(random() * 256);
      }
    }
    out.push(encodePng({ width: size, height: size, data, channels: 3, depth: 8 }));
  }
  return out;
}
