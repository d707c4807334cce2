// The work a request may cause, bounded from the image's header before any of it is done.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { DATA_FILE, loadIndex } from '../core/index-format.js';
import { centerCrop, crop, normalize, preprocess, resize, shortestSideSize, type PreprocessSpec, type RgbImage } from '../core/image.js';
import { Pipeline } from '../core/pipeline.js';
import { classifyWork, MemoryAccount, readImageHeader, segmentWork } from '../core/work-budget.js';
import { openEngine } from '../engine/node.js';
import { hostileImages } from '../fuzz/corpus.js';
import { runHostileImage, type Outcome } from '../fuzz/harness.js';
import { MEMORY_SLACK_BYTES, TIME_BOUND_MS } from '../fuzz/run.js';
import { readModelInfo } from '../models/load-model.js';
import { tinyModel } from './helpers.js';
import { syntheticIndex } from './worker-harness.js';

const pattern = (width: number, height: number): RgbImage => ({ width, height, data: Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + (i >> 7)) % 256) });

describe('image headers', () => {
  it('PNG and JPEG dimensions are read without decoding; junk has none', () => {
    for (const [w, h] of [[1, 1], [640, 7], [3, 999]] as const) {
      const img = pattern(w, h);
      expect(readImageHeader(encodePng({ width: w, height: h, data: img.data, channels: 3, depth: 8 }))).toMatchObject({ format: 'png', width: w, height: h });
      const rgba = new Uint8Array(w * h * 4);
      expect(readImageHeader(new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, 80).data))).toMatchObject({ format: 'jpeg', width: w, height: h });
    }
    expect(readImageHeader(new TextEncoder().encode('hello'))).toBeUndefined();
    expect(readImageHeader(new Uint8Array([0xff, 0xd8, 0xff]))).toBeUndefined();
  });
});

describe('classify preprocessing of elongated images', () => {
  const spec: PreprocessSpec = { resizeShortest: 32, cropSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resample: 'bicubic' };

  it('up to 4:1 is unchanged; beyond, the centre 4:1 part gives what the full resize gives, within 3 grey levels (0.05 normalised)', () => {
    const oblong = pattern(160, 40);
    expect(preprocess(oblong, spec)).toEqual(preprocessWithoutCut(oblong, spec));
    // A smooth 913×100 scene (9.13:1): the cut shifts the sampling grid by under a pixel.
    const strip: RgbImage = { width: 913, height: 100, data: new Uint8Array(913 * 100 * 3) };
    for (let y = 0; y < 100; y++) for (let x = 0; x < 913; x++) strip.data.set([128 + 100 * Math.sin(x / 40), 128 + 100 * Math.cos(y / 30), 128 + 100 * Math.sin((x + y) / 50)], (y * 913 + x) * 3);
    const ours = preprocess(strip, spec), reference = preprocessWithoutCut(strip, spec);
    let maxDiff = 0;
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - reference[i]!));
    console.log(`9:1 strip: max |cut - full| = ${maxDiff.toFixed(4)}`);
    expect(maxDiff).toBeLessThan(0.05);
  });

  it('a 65535×1 strip costs what a 4×1 image of it does, not 14,680,064 × 224 pixels', () => {
    const header = { format: 'png' as const, width: 65535, height: 1, decodeBytes: 65535 * 3 };
    const work = classifyWork(header, { imageSize: 224, grid: 7, embedDim: 512 });
    expect(work.parts.resize).toBeLessThan(3 * 2 ** 20);
    expect(preprocess(pattern(65535, 1), { ...spec, resizeShortest: 224, cropSize: 224 })).toHaveLength(3 * 224 * 224);
  });
});

/** The exact HF path, without the 4:1 cut: the whole image resized, then centre-cropped. */
function preprocessWithoutCut(img: RgbImage, spec: PreprocessSpec): Float32Array {
  const [w, h] = shortestSideSize(img.width, img.height, spec.resizeShortest);
  return normalize(centerCrop(resize(img, w, h, spec.resample), spec.cropSize), spec.mean, spec.std);
}

describe('segmentation work', () => {
  it('grows with the number of classes and the answer format, and counts the encoder passes', () => {
    const header = { format: 'png' as const, width: 640, height: 480, decodeBytes: 640 * 480 * 3 };
    const model = { imageSize: 224, grid: 14, embedDim: 512 };
    const eight = segmentWork(header, model, { queries: 8, format: 'json' });
    const thousand = segmentWork(header, model, { queries: 1000, format: 'json' });
    // Each of the 6 windows keeps 4 bytes per class per patch (14 × 14); the 448×336 working-size
    // maps exist 16 classes at a time, whatever the class count.
    expect(thousand.parts.maps! - eight.parts.maps!).toBe(6 * 992 * 196 * 4 + (16 - 8) * 448 * 336 * 4);
    expect(segmentWork(header, model, { queries: 8, format: 'png' }).bytes).toBeLessThan(eight.bytes);
    expect(eight.passes).toBe(6); // 3 × 2 windows of 224 at stride 112
    // A 1024×1 strip is squeezed to 4:1 before windows are laid.
    expect(segmentWork({ ...header, width: 1024, height: 1 }, model, { queries: 8, format: 'json' }).passes).toBe(11 * 2);
  });

  it('a memory account admits reservations up to what is free, and releases each once', () => {
    const account = new MemoryAccount();
    const a = account.tryReserve(60, 100)!;
    expect(account.tryReserve(50, 100)).toBeUndefined();
    const b = account.tryReserve(40, 100)!;
    expect(account.inFlightBytes).toBe(100);
    a();
    a();
    expect(account.inFlightBytes).toBe(40);
    b();
    expect(account.inFlightBytes).toBe(0);
  });
});

describe('fuzz corpus (300 hostile images) through decode → preprocess → segment', () => {
  let pipeline: Pipeline;
  beforeAll(async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const indexDir = syntheticIndex(modelDir, 8, 2);
    const index = await loadIndex(JSON.parse(readFileSync(join(indexDir, 'manifest.json'), 'utf8')), readFileSync(join(indexDir, DATA_FILE)));
    pipeline = new Pipeline(await openEngine(modelDir, readModelInfo(modelDir)), index);
  });

  it(`each input ends within ${TIME_BOUND_MS} ms and allocates no more than its header's estimate, never a crash`, { timeout: 300_000 }, async () => {
    const seen = new Map<Outcome, number>();
    const over: string[] = [];
    for (const image of hostileImages(300, 7)) {
      const r = await runHostileImage(pipeline, image.bytes);
      seen.set(r.outcome, (seen.get(r.outcome) ?? 0) + 1);
      if (r.ms > TIME_BOUND_MS) over.push(`${image.name}: ${r.ms.toFixed(0)} ms`);
      if (r.allocationBound !== undefined && r.allocatedBytes > r.allocationBound + MEMORY_SLACK_BYTES) over.push(`${image.name}: ${r.allocatedBytes} > ${r.allocationBound}`);
    }
    console.log(`fuzz corpus outcomes: ${[...seen].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    expect(over).toEqual([]);
    // The corpus reaches every way out, so the bounds were tested on each.
    for (const outcome of ['answered', 'over budget', 'undecodable', 'unsupported', 'too large to decode'] as Outcome[]) expect(seen.get(outcome) ?? 0).toBeGreaterThan(0);
  });
});
