// What a request will cost, decided from the image's header before any of the work is done:
// the bytes it will allocate (decode, resize, the encoder's outputs, segmentation's per-class
// maps, the answer) and the number of encoder passes. Pure: no I/O, no clock.
import { pngDecodeBytes, readPngHeader, sniffFormat, type ImageFormat } from './decode.js';
import { MAX_CLASSIFY_ASPECT, shortestSideSize, type RgbImage } from './image.js';
import { pamrBytes, type PamrOptions } from './scoring/pamr.js';
import { QUERY_CHUNK, segmentLayout } from './scoring/segment.js';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** What decoding it allocates (decoder buffers and the RGB result). */
  decodeBytes: number;
}

/** Bytes jpeg-js allocates per pixel: 16-bit coefficients for three components, the RGB result. */
const JPEG_BYTES_PER_PIXEL = 9;

/**
 * Width, height and decode cost from a PNG's IHDR or a JPEG's SOF marker; undefined when the
 * header cannot be read (the decoder then answers with its own error, at no cost).
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader | undefined {
  const png = readPngHeader(bytes);
  if (png) return { format: 'png', width: png.width, height: png.height, decodeBytes: pngDecodeBytes(png.width, png.height, png.bitDepth, png.colourType) };
  const format = sniffFormat(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'jpeg') {
    // Walk the marker segments to the first start-of-frame (SOF0..SOF15 but DHT, JPG, DAC).
    for (let at = 2; at + 9 <= bytes.length; ) {
      if (bytes[at] !== 0xff) return undefined;
      const marker = bytes[at + 1]!;
      if (marker === 0xff) { at++; continue; } // fill byte
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        const height = view.getUint16(at + 5), width = view.getUint16(at + 7);
        return { format, width, height, decodeBytes: JPEG_BYTES_PER_PIXEL * width * height };
      }
      at += 2 + view.getUint16(at + 2);
    }
  }
  return undefined;
}

/**
 * The header a request is admitted by before decoding: readable, with pixels in (0, maxPixels].
 * Otherwise the decoder refuses the image at no cost, or (a damaged JPEG it resynchronises) the
 * request is admitted afterwards by its decoded size (decodedHeader).
 */
export function admissionHeader(bytes: Uint8Array, maxPixels: number): ImageHeader | undefined {
  const header = readImageHeader(bytes);
  return header && header.width * header.height > 0 && header.width * header.height <= maxPixels ? header : undefined;
}

/** An image's header by its decoded size (what decoding it allocated: its RGB). */
export function decodedHeader(image: RgbImage): ImageHeader {
  return { format: 'unknown', width: image.width, height: image.height, decodeBytes: 3 * image.width * image.height };
}

/** What the model looks like to the budget. */
export interface ModelShape {
  imageSize: number;
  grid: number;
  embedDim: number;
}

export type SegmentFormat = 'png' | 'rle' | 'json';

/** Bytes per label-map pixel of each answer, worst case (RLE: alternating labels). */
const ANSWER_BYTES_PER_PIXEL: Record<SegmentFormat, number> = { png: 2, json: 12, rle: 24 };

export interface WorkEstimate {
  /** Peak bytes the request allocates, by part. */
  parts: Record<string, number>;
  bytes: number;
  /** Image-encoder passes. */
  passes: number;
  /** All it allocates if nothing were collected: each pass allocates its window's buffers anew. */
  allocatedBytes: number;
}

function total(parts: Record<string, number>, passes: number): WorkEstimate {
  const bytes = Object.values(parts).reduce((a, b) => a + b, 0);
  return { parts, passes, bytes, allocatedBytes: bytes + (passes - 1) * (parts.window ?? 0) };
}

/** Decode, the centre-cropped resize (image.ts preprocess), pixels and the encoder's outputs. */
export function classifyWork(header: ImageHeader, model: ModelShape): WorkEstimate {
  const { width, height } = header, S = model.imageSize;
  const short = Math.min(width, height), long = Math.min(Math.max(width, height), MAX_CLASSIFY_ASPECT * short);
  const [w, h] = shortestSideSize(long, short, S);
  return total({
    decode: header.decodeBytes,
    resize: 3 * (long * short + w * short + w * h), // the 4:1 cut, the horizontal pass, the result
    pixels: 3 * S * S * 4,
    features: 3 * (model.grid * model.grid + 1) * model.embedDim * 4,
  }, 1);
}

/** As pipeline.segment does it (segmentLayout): the working size, its windows, per-query maps, the answer. */
export function segmentWork(header: ImageHeader, model: ModelShape, options: { queries: number; shortSide?: number; format: SegmentFormat; refine?: PamrOptions }): WorkEstimate & { shortSide: number } {
  const { width, height } = header, S = model.imageSize, G = model.grid;
  const { shortSide, width: w, height: h, windows } = segmentLayout(width, height, S, options.shortSide);
  const passes = windows.length;
  const estimate = total({
    decode: header.decodeBytes,
    resize: 3 * (w * height + w * h),
    // A window: its crop (uint8), normalised pixels and their batch copy (f32); the encoder's
    // output, its slice and normalised rows; the per-query cosines.
    window: 3 * S * S * (1 + 4 + 4) + 3 * G * G * model.embedDim * 4,
    // Each window's [Q, G²] cosines are kept; working-size maps exist QUERY_CHUNK queries at a
    // time; the labels' online softmax holds 16 bytes per output pixel.
    maps: passes * options.queries * G * G * 4 + Math.min(options.queries, QUERY_CHUNK) * w * h * 4 + w * h * 2 + 16 * width * height,
    answer: width * height * (2 + ANSWER_BYTES_PER_PIXEL[options.format]),
    refine: options.refine ? pamrBytes(width * height, options.queries, options.refine) : 0,
  }, passes);
  return { ...estimate, shortSide };
}

const MB = 2 ** 20;

export function describeWork(estimate: WorkEstimate): string {
  return Object.entries(estimate.parts)
    .filter(([, b]) => b >= 0.05 * MB)
    .map(([part, b]) => `${part} ${(b / MB).toFixed(1)} MB`)
    .join(', ');
}

/**
 * The memory that requests in flight have reserved in this isolate. A request reserves its
 * estimate before it starts and releases it when it ends, so concurrent requests together stay
 * within what the model and indexes leave free.
 */
export class MemoryAccount {
  private reserved = 0;

  get inFlightBytes(): number {
    return this.reserved;
  }

  /** Reserves `bytes` if `free` (what the isolate has left for requests) allows; returns the release, or undefined. */
  tryReserve(bytes: number, free: number): (() => void) | undefined {
    if (this.reserved + bytes > free) return undefined;
    this.reserved += bytes;
    let released = false;
    return () => {
      if (!released) this.reserved -= bytes;
      released = true;
    };
  }
}
