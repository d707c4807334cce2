import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { decodeImage, ImageDecodeError } from '../core/decode.js';
import { centerCrop, normalize, preprocess, resize, shortestSideSize, type RgbImage } from '../core/image.js';

const row = (values: number[]): RgbImage => ({ width: values.length, height: 1, data: Uint8Array.from(values.flatMap((v) => [v, v, v])) });
const red = (img: RgbImage) => Array.from({ length: img.width * img.height }, (_, i) => img.data[i * 3]);

describe('PIL-style resampling, worked by hand', () => {
  it('bilinear 4 -> 2 is antialiased: weights (3,3,1)/7 and (1,3,3)/7', () => {
    // Support scales with the reduction factor (2): centre 1 sees pixels 0..2 with triangle weights .75,.75,.25.
    expect(red(resize(row([0, 70, 140, 210]), 2, 1, 'bilinear'))).toEqual([50, 160]);
  });

  it('bicubic 2 -> 4 (a = -0.5): first output = 100·1.0882 + 200·(−0.0882) = 91.2 -> 91', () => {
    // centre 0.25; taps at distance 0.25 and 1.25: k(0.25)=0.8671875, k(1.25)=−0.0703125, normalised by their sum.
    const k0 = 0.8671875, k1 = -0.0703125;
    const expected = Math.round((100 * k0 + 200 * k1) / (k0 + k1));
    expect(expected).toBe(91);
    const out = red(resize(row([100, 200]), 4, 1, 'bicubic'));
    expect(out[0]).toBe(91);
    expect(out[3]).toBe(209); // symmetric
  });

  it('bicubic overshoot is clipped to 0..255 between passes', () => {
    const out = red(resize(row([0, 255, 0, 255]), 8, 1, 'bicubic'));
    expect(Math.min(...out.map(Number))).toBeGreaterThanOrEqual(0);
    expect(Math.max(...out.map(Number))).toBeLessThanOrEqual(255);
  });

  it('output size: shortest side to S, long side truncated (HF)', () => {
    expect(shortestSideSize(640, 480, 224)).toEqual([298, 224]);
    expect(shortestSideSize(480, 640, 224)).toEqual([224, 298]);
    expect(shortestSideSize(100, 100, 64)).toEqual([64, 64]);
  });

  it('centre crop offsets are floor((in − out)/2)', () => {
    const img: RgbImage = { width: 5, height: 3, data: Uint8Array.from({ length: 45 }, (_, i) => Math.floor(i / 3)) };
    // rows 0..2 fit; columns start at floor((5−3)/2) = 1.
    expect(red(centerCrop(img, 3))).toEqual([1, 2, 3, 6, 7, 8, 11, 12, 13]);
  });

  it('normalise: (v/255 − mean)/std, channel-major', () => {
    const img: RgbImage = { width: 1, height: 1, data: Uint8Array.of(255, 0, 128) };
    const out = normalize(img, [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]);
    expect(out[0]).toBeCloseTo((1 - 0.48145466) / 0.26862954, 6);
    expect(out[1]).toBeCloseTo((0 - 0.4578275) / 0.26130258, 6);
    expect(out[2]).toBeCloseTo((128 / 255 - 0.40821073) / 0.27577711, 6);
  });

  it('full preprocess of a flat grey image gives the normalised constant everywhere', () => {
    const img: RgbImage = { width: 90, height: 60, data: new Uint8Array(90 * 60 * 3).fill(128) };
    const out = preprocess(img, { resizeShortest: 32, cropSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resample: 'bicubic' });
    expect(out).toHaveLength(3 * 32 * 32);
    for (const v of out) expect(v).toBeCloseTo((128 / 255 - 0.5) / 0.25, 6);
  });
});

describe('decoding', () => {
  const pixels = Uint8Array.from({ length: 4 * 3 * 4 }, (_, i) => (i * 37) % 256); // 4x3 RGBA

  it('PNG RGBA: alpha is dropped, colours exact', () => {
    const png = encodePng({ width: 4, height: 3, data: pixels, channels: 4, depth: 8 });
    const img = decodeImage(png);
    expect([img.width, img.height]).toEqual([4, 3]);
    for (let i = 0; i < 12; i++) for (let c = 0; c < 3; c++) expect(img.data[i * 3 + c]).toBe(pixels[i * 4 + c]);
  });

  it('PNG greyscale and 16-bit', () => {
    const grey = decodeImage(encodePng({ width: 2, height: 1, data: Uint8Array.of(10, 200), channels: 1, depth: 8 }));
    expect(Array.from(grey.data)).toEqual([10, 10, 10, 200, 200, 200]);
    const deep = decodeImage(encodePng({ width: 1, height: 1, data: Uint16Array.of(65535, 0, 32896), channels: 3, depth: 16 }));
    expect(Array.from(deep.data)).toEqual([255, 0, 128]);
  });

  it('JPEG decodes to RGB close to the source (lossy)', () => {
    const rgba = new Uint8Array(16 * 16 * 4);
    for (let i = 0; i < 256; i++) rgba.set([200, 40, 40, 255], i * 4);
    const img = decodeImage(jpeg.encode({ width: 16, height: 16, data: rgba }, 95).data);
    expect(Math.abs(img.data[0]! - 200) + Math.abs(img.data[1]! - 40) + Math.abs(img.data[2]! - 40)).toBeLessThan(12);
  });

  it('refuses garbage, unsupported formats and pixel bombs with typed errors', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof ImageDecodeError ? e.code : 'other';
      }
      return 'none';
    };
    expect(err(() => decodeImage(new TextEncoder().encode('hello world')))).toBe('unsupported_media_type');
    expect(err(() => decodeImage(Uint8Array.of(0x47, 0x49, 0x46, 0x38, 0x39, 0x61)))).toBe('unsupported_media_type');
    expect(err(() => decodeImage(Uint8Array.of(0xff, 0xd8, 0xff, 0, 1, 2, 3)))).toBe('undecodable');
    expect(err(() => decodeImage(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0)))).toBe('undecodable');
    const big = encodePng({ width: 100, height: 100, data: new Uint8Array(100 * 100 * 3), channels: 3, depth: 8 });
    expect(err(() => decodeImage(big, { maxPixels: 5000 }))).toBe('too_large');
    const bigJpeg = jpeg.encode({ width: 100, height: 100, data: new Uint8Array(100 * 100 * 4) }, 50).data;
    expect(err(() => decodeImage(bigJpeg, { maxPixels: 5000 }))).toBe('too_large');
  });
});
