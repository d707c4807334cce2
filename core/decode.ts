// Image decoding to RGB in pure JavaScript (runs in Node and workerd).
// Alpha is dropped, exactly as PIL's convert("RGB") does in HF's preprocessing.
import { decode as decodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import type { RgbImage } from './image.js';

export class ImageDecodeError extends Error {
  constructor(
    message: string,
    readonly code: 'unsupported_media_type' | 'undecodable' | 'too_large',
  ) {
    super(message);
  }
}

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'unknown';

export function sniffFormat(bytes: Uint8Array): ImageFormat {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length > 12 && String.fromCharCode(...bytes.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...bytes.subarray(8, 12)) === 'WEBP') return 'webp';
  if (bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46) return 'gif';
  return 'unknown';
}

export interface DecodeLimits {
  /** Refuse images with more pixels than this (decompression bombs). */
  maxPixels: number;
  /**
   * Refuse images whose decoding would allocate more than this: JPEG as jpeg-js counts its
   * buffers (a 12 MP photo needs ~110 MB; default 4 bytes per allowed pixel + 64 MB), PNG from
   * its header before inflating (pngDecodeBytes; no default).
   */
  maxDecodeMB?: number;
}

export const DEFAULT_LIMITS: DecodeLimits = { maxPixels: 50_000_000 };

/**
 * What decoding a PNG allocates, from its header: the inflated scanlines (samples of
 * `bitDepth` bits, a filter byte per row), the decoder's unfiltered copy of them, and our RGB
 * output. A 124 KB 4000×4000 16-bit RGBA PNG inflates to 128 MB.
 */
export function pngDecodeBytes(width: number, height: number, bitDepth: number, colourType: number): number {
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colourType] ?? 4;
  const raw = height * (1 + Math.ceil((width * channels * Math.max(1, bitDepth)) / 8));
  return 2 * raw + width * height * 3;
}

/** A PNG's IHDR (the first chunk, bytes 16..25): read before anything is inflated. */
export function readPngHeader(bytes: Uint8Array): { width: number; height: number; bitDepth: number; colourType: number } | undefined {
  if (sniffFormat(bytes) !== 'png' || bytes.length < 26) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20), bitDepth: bytes[24]!, colourType: bytes[25]! };
}

function toRgb(width: number, height: number, channels: number, data: ArrayLike<number>, maxValue: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const n = width * height;
  const scale = 255 / maxValue;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const src = channels < 3 ? i * channels : i * channels + c; // grey (+alpha) replicates
      out[i * 3 + c] = Math.round(data[src]! * scale);
    }
  }
  return { width, height, data: out };
}

export function decodeImage(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_LIMITS): RgbImage {
  const image = decodeAny(bytes, limits);
  if (image.width < 1 || image.height < 1) throw new ImageDecodeError(`the image has no pixels (${image.width}×${image.height})`, 'undecodable');
  return image;
}

function decodeAny(bytes: Uint8Array, limits: DecodeLimits): RgbImage {
  const format = sniffFormat(bytes);
  try {
    if (format === 'jpeg') {
      const maxMemoryUsageInMB = limits.maxDecodeMB ?? Math.ceil((limits.maxPixels * 4) / 2 ** 20) + 64;
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: limits.maxPixels / 1e6, maxMemoryUsageInMB });
      return { width: img.width, height: img.height, data: img.data };
    }
    if (format === 'png') {
      // The header is checked before any inflating.
      const header = readPngHeader(bytes);
      if (header) {
        const { width, height, bitDepth, colourType } = header;
        const pixels = width * height;
        if (pixels === 0) throw new ImageDecodeError(`the image has no pixels (${width}×${height})`, 'undecodable');
        if (pixels > limits.maxPixels) throw new ImageDecodeError(`image has ${pixels} pixels, over the limit of ${limits.maxPixels}`, 'too_large');
        const mb = pngDecodeBytes(width, height, bitDepth, colourType) / 2 ** 20;
        if (limits.maxDecodeMB !== undefined && mb > limits.maxDecodeMB) {
          throw new ImageDecodeError(`decoding this ${width}×${height} PNG (${bitDepth}-bit, colour type ${colourType}) would need about ${Math.ceil(mb)} MB, more than ${limits.maxDecodeMB} MB; send a smaller image (a few hundred pixels a side is all the model uses)`, 'too_large');
        }
      }
      const img = decodePng(bytes);
      if (img.palette) {
        const idx = img.data;
        const rgb = new Uint8Array(img.width * img.height * 3);
        for (let i = 0; i < img.width * img.height; i++) {
          const entry = img.palette[idx[i]!] ?? [0, 0, 0];
          rgb.set([entry[0]!, entry[1]!, entry[2]!], i * 3);
        }
        return { width: img.width, height: img.height, data: rgb };
      }
      return toRgb(img.width, img.height, img.channels, img.data, img.depth === 16 ? 65535 : 255);
    }
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    const msg = (e as Error).message ?? String(e);
    if (/maxResolutionInMP/i.test(msg)) throw new ImageDecodeError(`image is over the pixel limit of ${limits.maxPixels}`, 'too_large');
    if (/maxMemoryUsage/i.test(msg)) {
      throw new ImageDecodeError(`decoding this ${format} would need more than ${limits.maxDecodeMB ?? 'the allowed'} MB; send a smaller image (a few hundred pixels a side is all the model uses)`, 'too_large');
    }
    throw new ImageDecodeError(`cannot decode ${format} image: ${msg}`, 'undecodable');
  }
  throw new ImageDecodeError(format === 'unknown' ? 'not a JPEG or PNG image' : `${format} images are not supported (JPEG and PNG are)`, 'unsupported_media_type');
}
