// Hostile images for the decode → preprocess → segment path: extreme and zero dimensions,
// huge declared sizes, 16-bit, palette, grey + alpha, interlace flags, truncations, flipped
// bytes; PNG, JPEG and WebP. Seeded: the same seed gives the same corpus.
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';

export interface HostileImage {
  name: string;
  bytes: Uint8Array;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 2246822519) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}

const SIDES = [0, 1, 2, 3, 7, 16, 63, 64, 65, 224, 1000, 4096, 65535, 2 ** 31 - 1, 2 ** 32 - 1];

/** A PNG whose IHDR declares other values (the CRC no longer matches; decoders read the header first). */
function patchPng(bytes: Uint8Array, fields: { width?: number; height?: number; depth?: number; colourType?: number; interlace?: number }): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  if (fields.width !== undefined) view.setUint32(16, fields.width);
  if (fields.height !== undefined) view.setUint32(20, fields.height);
  if (fields.depth !== undefined) out[24] = fields.depth;
  if (fields.colourType !== undefined) out[25] = fields.colourType;
  if (fields.interlace !== undefined) out[28] = fields.interlace;
  return out;
}

/** A JPEG whose first SOF declares other dimensions. */
function patchJpeg(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  for (let at = 2; at + 9 <= out.length; at += 2 + view.getUint16(at + 2)) {
    if (out[at + 1]! >= 0xc0 && out[at + 1]! <= 0xc2) {
      view.setUint16(at + 5, height);
      view.setUint16(at + 7, width);
      break;
    }
  }
  return out;
}

function noise(n: number, random: () => number, max = 256): number[] {
  return Array.from({ length: n }, () => Math.floor(random() * max));
}

function realPng(random: () => number, width: number, height: number): { bytes: Uint8Array; desc: string } {
  const kind = Math.floor(random() * 5);
  const n = width * height;
  if (kind === 0) return { bytes: encodePng({ width, height, data: new Uint16Array(noise(n * 4, random, 65536)), channels: 4, depth: 16 }), desc: '16-bit RGBA' };
  if (kind === 1) return { bytes: encodePng({ width, height, data: new Uint8Array(noise(n * 2, random)), channels: 2, depth: 8 }), desc: 'grey+alpha' };
  if (kind === 2) {
    const palette = Array.from({ length: 16 }, () => noise(3, random) as [number, number, number]);
    return { bytes: encodePng({ width, height, data: new Uint8Array(noise(n, random, 16)), channels: 1, depth: 8, palette }), desc: 'palette' };
  }
  if (kind === 3) return { bytes: encodePng({ width, height, data: new Uint8Array(noise(n, random)), channels: 1, depth: 8 }), desc: 'grey' };
  return { bytes: encodePng({ width, height, data: new Uint8Array(noise(n * 3, random)), channels: 3, depth: 8 }), desc: 'RGB' };
}

function realJpeg(random: () => number, width: number, height: number): Uint8Array {
  return new Uint8Array(jpeg.encode({ width, height, data: new Uint8Array(noise(width * height * 4, random)) }, 50 + Math.floor(random() * 50)).data);
}

/** `count` hostile images from `seed`. Real pixel data stays small; declared sizes do not. */
export function hostileImages(count: number, seed = 1): HostileImage[] {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  // Real images of extreme shape, but few pixels.
  const smallSide = () => pick([1, 2, 3, 8, 31, 64, 100]);
  const longSide = () => pick([1, 64, 200, 1000, 3000]);
  const out: HostileImage[] = [];
  for (let i = 0; out.length < count; i++) {
    const [w, h] = random() < 0.5 ? [smallSide(), longSide()] : [longSide(), smallSide()];
    const kind = i % 10;
    if (kind === 0) {
      const { bytes, desc } = realPng(random, w, h);
      out.push({ name: `png ${desc} ${w}x${h}`, bytes });
    } else if (kind === 1) {
      out.push({ name: `jpeg ${w}x${h}`, bytes: realJpeg(random, w, h) });
    } else if (kind === 2) {
      const { bytes, desc } = realPng(random, 8, 8);
      const [dw, dh] = [pick(SIDES), pick(SIDES)];
      out.push({ name: `png ${desc} declaring ${dw}x${dh}`, bytes: patchPng(bytes, { width: dw, height: dh }) });
    } else if (kind === 3) {
      const [dw, dh] = [pick(SIDES.filter((s) => s < 65536)), pick(SIDES.filter((s) => s < 65536))];
      out.push({ name: `jpeg declaring ${dw}x${dh}`, bytes: patchJpeg(realJpeg(random, 16, 16), dw, dh) });
    } else if (kind === 4) {
      const { bytes } = realPng(random, 16, 16);
      const fields = { depth: pick([0, 1, 2, 4, 8, 16, 32]), colourType: pick([0, 2, 3, 4, 5, 6, 7]), interlace: pick([0, 1, 2]) };
      out.push({ name: `png header depth ${fields.depth} colour type ${fields.colourType} interlace ${fields.interlace}`, bytes: patchPng(bytes, fields) });
    } else if (kind === 5) {
      const base = random() < 0.5 ? realPng(random, 24, 24).bytes : realJpeg(random, 24, 24);
      out.push({ name: `truncated to ${Math.floor(base.length / 3)} bytes`, bytes: base.subarray(0, Math.floor(random() * base.length)) });
    } else if (kind === 6 || kind === 7) {
      const base = random() < 0.5 ? realPng(random, 32, 32).bytes : realJpeg(random, 32, 32);
      const bytes = base.slice();
      const flips = 1 + Math.floor(random() * 8);
      for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      out.push({ name: `${flips} bytes flipped`, bytes });
    } else if (kind === 8) {
      // WebP: a RIFF container with a VP8L/VP8 chunk of junk (no decoder here without the Images binding).
      const body = new Uint8Array([...new TextEncoder().encode('RIFF'), 0, 1, 0, 0, ...new TextEncoder().encode('WEBP'), ...new TextEncoder().encode(pick(['VP8 ', 'VP8L', 'VP8X'])), ...noise(64, random)]);
      out.push({ name: 'webp junk', bytes: body });
    } else {
      out.push({ name: `${pick(['empty', 'one byte', 'png signature only', 'jpeg SOI only'])}`, bytes: pick([new Uint8Array(0), new Uint8Array([0x89]), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), new Uint8Array([0xff, 0xd8, 0xff])]) });
    }
  }
  return out;
}
