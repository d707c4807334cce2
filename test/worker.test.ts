// The Worker in the real Workers runtime (workerd via Miniflare), on the tiny model.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../core/decode.js';
import { openEngine } from '../engine/node.js';
import { DATA_FILE, loadIndex } from '../core/index-format.js';
import { Pipeline } from '../core/pipeline.js';
import { renderPrompt, startGeneratorServer } from '../eval/generator-server.js';
import { buildIndex } from '../indexer/build.js';
import { modelJsonSha256, readModelInfo } from '../models/load-model.js';
import { modelKey } from '../core/storage-layout.js';
import { readImageHeader, segmentWork } from '../core/work-budget.js';
import { tempDir, tinyModel } from './helpers.js';
import { hostileLoadRun } from '../bench/hostile-load.js';
import { main } from '../cli/main.js';
import { startWorker, type WorkerHandle } from './worker-harness.js';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');
const { modelDir } = tinyModel('tiny-p16');
const png = renderPrompt('a red star', 1, 64);
const jpg = (() => {
  const img = decodeImage(renderPrompt('a blue ring', 2, 96));
  const rgba = new Uint8Array(96 * 96 * 4);
  for (let i = 0; i < 96 * 96; i++) rgba.set([...img.data.subarray(i * 3, i * 3 + 3), 255], i * 4);
  return new Uint8Array(jpeg.encode({ width: 96, height: 96, data: rgba }, 90).data);
})();

async function makeIndex(classes: string, generator?: string): Promise<string> {
  const out = join(tempDir('windex'), 'tiny');
  await buildIndex({ classes: join(EXAMPLES, classes), model: modelDir, out, generator, shots: 2, dedup: 0.95, susPrompts: 'photo', batch: 8, device: 'cpu', cacheDir: tempDir('wcache'), maxTuneQueries: 64, templates: join(EXAMPLES, 'shapes-templates.txt'), log: () => {}, progress: false });
  return out;
}

/** multipart/form-data bytes, built by hand (Node's FormData does not cross into Miniflare's fetch). */
function multipart(fields: Record<string, { bytes: Uint8Array; type: string; filename: string }>): { body: Uint8Array; type: string } {
  const boundary = 'nameonly-test-boundary';
  const parts: Uint8Array[] = [];
  const text = (t: string) => new TextEncoder().encode(t);
  for (const [name, f] of Object.entries(fields)) {
    parts.push(text(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${f.filename}"\r\nContent-Type: ${f.type}\r\n\r\n`), f.bytes, text('\r\n'));
  }
  parts.push(text(`--${boundary}--\r\n`));
  return { body: Uint8Array.from(parts.flatMap((p) => [...p])), type: `multipart/form-data; boundary=${boundary}` };
}

/** A PNG whose IHDR declares other dimensions (the CRC no longer matches; the header is read first). */
function withDims(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  return out;
}

const post = (w: WorkerHandle, path: string, body: Uint8Array | string, type = 'image/png', headers: Record<string, string> = {}) => w.fetch(path, { method: 'POST', body: body as BodyInit, headers: { 'content-type': type, ...headers } });

let withSupport: string, zeroShot: string;
let w: WorkerHandle;
beforeAll(async () => {
  const gen = await startGeneratorServer();
  withSupport = await makeIndex('shapes.txt', gen.url);
  zeroShot = await makeIndex('shapes-segmentation.txt');
  gen.server.close();
  w = await startWorker();
  await w.publish(withSupport, modelDir);
}, 180_000);
afterAll(async () => w?.dispose());

describe('Worker routes', () => {
  it('classify: PNG and JPEG bodies, multipart, top_k, method auto = the best leave-one-out method, calibrated scores, "none of these"', async () => {
    const manifest = JSON.parse(readFileSync(join(withSupport, 'manifest.json'), 'utf8'));
    const loo = manifest.hyperparameters.looAccuracy as Record<string, number>;
    const best = ['clip', 'calip', 'tipx', 'combined'].reduce((b, m) => (loo[m]! > loo[b]! + 1e-12 ? m : b), 'clip');
    for (const [body, type] of [[png, 'image/png'], [jpg, 'image/jpeg']] as const) {
      const r = await post(w, '/v1/classify?top_k=3', body, type);
      expect(r.status).toBe(200);
      const j = (await r.json()) as { answer: string; labels: { label: string; score: number }[]; method: string; calibrated: boolean; reject_below: number; timings_ms: Record<string, number>; index: { name: string } };
      expect(j.labels).toHaveLength(3);
      expect(j.method).toBe(best);
      expect(j.calibrated).toBe(true);
      expect(j.reject_below).toBe(manifest.hyperparameters.calibration[best].rejectBelow);
      expect(j.answer).toBe(j.labels[0]!.score < j.reject_below ? 'none of these' : j.labels[0]!.label);
      // Every answer can be "none of these", its guesses still listed; and never, with reject=off.
      const none = (await (await post(w, '/v1/classify?top_k=3&reject=1', body, type)).json()) as { answer: string; labels: unknown[] };
      expect([none.answer, none.labels.length]).toEqual(['none of these', 3]);
      expect(((await (await post(w, '/v1/classify?reject=off', body, type)).json()) as { answer: string }).answer).not.toBe('none of these');
      expect(j.index.name).toBe('tiny');
      expect(j.labels[0]!.score).toBeGreaterThanOrEqual(j.labels[1]!.score);
      for (const k of ['decode', 'preprocess', 'encode', 'score', 'total']) expect(typeof j.timings_ms[k]).toBe('number');
    }
    const form = multipart({ image: { bytes: png, type: 'image/png', filename: 'a.png' } });
    const m = await post(w, '/v1/classify?method=clip', form.body, form.type);
    expect(m.status).toBe(200);
    expect(((await m.json()) as { method: string }).method).toBe('clip');
  });

  it('the combined answer equals the scoring core’s answer on the same image (same int8 engine, in Node)', async () => {
    const r = await post(w, '/v1/classify?top_k=8&method=combined', png);
    const worker = ((await r.json()) as { labels: { label: string; logit: number }[] }).labels;
    const info = readModelInfo(modelDir);
    const encoder = await openEngine(modelDir, info);
    const index = await loadIndex(JSON.parse(readFileSync(join(withSupport, 'manifest.json'), 'utf8')), readFileSync(join(withSupport, DATA_FILE)));
    const pipeline = new Pipeline(encoder, index);
    const [features] = await pipeline.features([decodeImage(png)]);
    const local = pipeline.rank(pipeline.logits(features!, 'combined'), 'combined', 8).labels;
    expect(worker.map((l) => l.label)).toEqual(local.map((l) => l.label));
    worker.forEach((l, i) => expect(Math.abs(l.logit - local[i]!.logit)).toBeLessThan(1e-3));
  });

  it('segment: an extreme aspect ratio (a 1024×1 strip) is squeezed to 4:1, answered at its own size, with bounded work', async () => {
    const strip = encodePng({ width: 1024, height: 1, data: Uint8Array.from({ length: 1024 * 3 }, (_, i) => (i * 5) % 256), channels: 3, depth: 8 });
    const r = await post(w, '/v1/segment?format=rle', strip);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { width: number; height: number; rle: number[] };
    expect([body.width, body.height]).toEqual([1024, 1]);
    expect(body.rle.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0)).toBe(1024);
  });

  it('segment: png (palette, input size), rle and json', async () => {
    const p = await post(w, '/v1/segment?format=png', jpg, 'image/jpeg');
    expect(p.status).toBe(200);
    expect(p.headers.get('content-type')).toBe('image/png');
    const img = decodePng(new Uint8Array(await p.arrayBuffer()));
    expect([img.width, img.height]).toEqual([96, 96]);
    expect(img.palette).toHaveLength(8);
    expect(JSON.parse(p.headers.get('x-nameonly-legend')!)).toHaveLength(8);
    expect(JSON.parse(p.headers.get('x-nameonly-legend')!)[0]).toEqual({ label: 'circle', color: img.palette![0] });
    const rle = (await (await post(w, '/v1/segment?format=rle', png)).json()) as { rle: number[]; width: number; height: number };
    expect(rle.rle.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0)).toBe(64 * 64);
    const js = (await (await post(w, '/v1/segment?format=json&size=64', png)).json()) as { labels: number[]; legend: unknown[] };
    expect(js.labels).toHaveLength(64 * 64);
    expect(js.labels.every((l) => l >= 0 && l < 8)).toBe(true);
  });

  it('classes, health (with memory under the tiny setup’s budget), openapi, page', async () => {
    const c = (await (await w.fetch('/v1/classes')).json()) as { classes: { name: string }[]; support: { images: number } };
    expect(c.classes.map((x) => x.name)).toEqual(['circle', 'square', 'triangle', 'star', 'cross', 'ring', 'heart', 'diamond']);
    expect(c.support.images).toBe(16);
    const h = await w.fetch('/v1/health');
    expect(h.status).toBe(200);
    const health = (await h.json()) as { memory: { wasm_heap_bytes: number; index_bytes: number; total_bytes: number } };
    expect(health.memory.wasm_heap_bytes).toBeGreaterThan(0);
    expect(health.memory.total_bytes).toBeLessThan(48 * 2 ** 20); // tiny model + index budget
    const o = (await (await w.fetch('/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(o.openapi).toBe('3.1.0');
    expect(Object.keys(o.paths)).toEqual(expect.arrayContaining(['/v1/classify', '/v1/segment', '/v1/classes', '/v1/health']));
    // The segment answer is documented as it is given: every required field, the legend header.
    const segment = (o.paths['/v1/segment'] as { post: { responses: { '200': { headers: Record<string, unknown>; content: Record<string, unknown> } } } }).post.responses['200'];
    expect(Object.keys(segment.content)).toEqual(['application/json', 'image/png']);
    expect(segment.headers['x-nameonly-legend']).toBeDefined();
    const schema = (o as unknown as { components: { schemas: { Segmentation: { required: string[] } } } }).components.schemas.Segmentation;
    const answer = (await (await post(w, '/v1/segment?format=json', png)).json()) as Record<string, unknown>;
    for (const key of schema.required) expect(answer).toHaveProperty(key);
    const page = await w.fetch('/');
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/v1/classify');
  });
});

describe('Worker errors: one JSON shape, the right status, never a 500 for bad input', () => {
  const cases: [string, () => Promise<Response>, number, string][] = [
    ['truncated PNG', () => post(w, '/v1/classify', png.subarray(0, 60)), 400, 'undecodable_image'],
    ['truncated JPEG', () => post(w, '/v1/classify', jpg.subarray(0, 200), 'image/jpeg'), 400, 'undecodable_image'],
    ['not an image', () => post(w, '/v1/classify', new TextEncoder().encode('hello, I am text'), 'application/octet-stream'), 415, 'unsupported_media_type'],
    ['unsupported content type', () => post(w, '/v1/classify', 'x', 'text/plain'), 415, 'unsupported_media_type'],
    ['PNG declaring width 0', () => post(w, '/v1/classify', withDims(png, 0, 64)), 400, 'undecodable_image'],
    ['PNG declaring 0×0, segment', () => post(w, '/v1/segment', withDims(png, 0, 0)), 400, 'undecodable_image'],
    ['16-bit RGBA PNG that would inflate past MAX_DECODE_MB', () => post(w, '/v1/classify', encodePng({ width: 4000, height: 4000, data: new Uint16Array(4000 * 4000 * 4), channels: 4, depth: 16 })), 413, 'payload_too_large'],
    ['huge-dimension PNG header', () => post(w, '/v1/classify', encodePng({ width: 5000, height: 5000, data: new Uint8Array(5000 * 5000), channels: 1, depth: 8 })), 413, 'payload_too_large'],
    ['oversized body (declared)', () => post(w, '/v1/classify', new Uint8Array(11 * 2 ** 20)), 413, 'payload_too_large'],
    ['multipart without an image field', () => { const f = multipart({ photo: { bytes: png, type: 'image/png', filename: 'a.png' } }); return post(w, '/v1/classify', f.body, f.type); }, 400, 'bad_request'],
    ['malformed multipart', () => post(w, '/v1/classify', new TextEncoder().encode('garbage'), 'multipart/form-data; boundary=x'), 400, 'bad_request'],
    ['bad top_k', () => post(w, '/v1/classify?top_k=0', png), 422, 'invalid_parameter'],
    ['unknown parameter', () => post(w, '/v1/classify?topk=3', png), 422, 'invalid_parameter'],
    ['bad method', () => post(w, '/v1/classify?method=magic', png), 422, 'invalid_parameter'],
    ['bad reject', () => post(w, '/v1/classify?reject=1.5', png), 422, 'invalid_parameter'],
    ['bad format', () => post(w, '/v1/segment?format=gif', png), 422, 'invalid_parameter'],
    ['segment size over the window budget', () => post(w, '/v1/segment?size=2048', png), 422, 'invalid_parameter'],
    ['unpublished index', () => post(w, '/v1/classify?index=nope', png), 503, 'unavailable'],
    ['wrong method', () => w.fetch('/v1/classify'), 405, 'method_not_allowed'],
    ['unknown route', () => w.fetch('/v2/whatever'), 404, 'not_found'],
  ];
  it.each(cases)('%s', async (_name, request, status, code) => {
    const r = await request();
    expect(r.status).toBe(status);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message).not.toMatch(/\bat .*\(.*:\d+:\d+\)/); // no stack trace
  });
});

describe('Worker decode memory', () => {
  it('refuses a JPEG whose decoding would exceed MAX_DECODE_MB with a 413, and serves it under a larger budget', { timeout: 120_000 }, async () => {
    const w2 = 1600, h2 = 1200, rgba = new Uint8Array(w2 * h2 * 4).fill(128);
    const big = new Uint8Array(jpeg.encode({ width: w2, height: h2, data: rgba }, 80).data);
    const tight = await startWorker({ MAX_DECODE_MB: '8' });
    try {
      await tight.publish(withSupport, modelDir);
      const r = await post(tight, '/v1/classify', big, 'image/jpeg');
      expect(r.status).toBe(413);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/would need more than 8 MB/);
    } finally {
      await tight.dispose();
    }
    expect((await post(w, '/v1/classify', big, 'image/jpeg')).status).toBe(200); // 48 MB default
  });
});

describe('Worker with the Images binding (local, through Miniflare)', () => {
  it('shrinks a large JPEG, a 12 MP photo and a WebP before decoding; segmentation reports both sizes', { timeout: 120_000 }, async () => {
    const sharp = (await import('sharp')).default;
    const w2 = 1600, h2 = 1200;
    const big = new Uint8Array(jpeg.encode({ width: w2, height: h2, data: new Uint8Array(w2 * h2 * 4).fill(128) }, 80).data);
    const webp = new Uint8Array(await sharp(png).webp().toBuffer());
    const withImages = await startWorker({ MAX_DECODE_MB: '8', RESIZE_MAX_SIDE: '512' }, false, true);
    try {
      await withImages.publish(withSupport, modelDir);
      expect((await post(withImages, '/v1/classify', big, 'image/jpeg')).status).toBe(200); // 413 without the binding (above)
      // A 12 MP phone-sized photo: shrunk by the binding, decoded at 512 px.
      const phone = new Uint8Array(jpeg.encode({ width: 4000, height: 3000, data: new Uint8Array(4000 * 3000 * 4).fill(90) }, 70).data);
      const p12 = await post(withImages, '/v1/classify', phone, 'image/jpeg');
      expect(p12.status).toBe(200);
      const seg = (await (await post(withImages, '/v1/segment?format=json', big, 'image/jpeg')).json()) as { width: number; height: number; input: { width: number; height: number } };
      expect(seg.input).toEqual({ width: 1600, height: 1200 });
      expect([seg.width, seg.height]).toEqual([512, 384]);
      const r = await post(withImages, '/v1/classify', webp, 'image/webp');
      expect(r.status).toBe(200);
      expect(((await r.json()) as { labels: unknown[] }).labels).toHaveLength(5);
      // One answer for one cause, with or without the binding: a broken PNG 400, text 415.
      for (const worker of [withImages, w]) {
        const broken = await post(worker, '/v1/classify', png.subarray(0, 60));
        expect([broken.status, ((await broken.json()) as { error: { code: string } }).error.code]).toEqual([400, 'undecodable_image']);
        const text = await post(worker, '/v1/classify', new TextEncoder().encode('hello, I am text'), 'application/octet-stream');
        expect([text.status, ((await text.json()) as { error: { code: string } }).error.code]).toEqual([415, 'unsupported_media_type']);
      }
    } finally {
      await withImages.dispose();
    }
    const noBinding = await post(w, '/v1/classify', webp, 'image/webp');
    expect(noBinding.status).toBe(415);
  });
});

describe('Worker index management', () => {
  it('hot-reloads when the current pointer moves; tipx on an index without support is a 422', async () => {
    await w.publish(zeroShot, modelDir); // the same name "tiny": the pointer moves to the new version
    const c = (await (await w.fetch('/v1/classes')).json()) as { classes: { name: string }[]; default_method: string };
    expect(c.classes[0]!.name).toBe('background');
    expect(c.default_method).toBe('calip');
    const r = await post(w, '/v1/classify?method=tipx', png);
    expect(r.status).toBe(422);
    await w.publish(withSupport, modelDir);
    expect(((await (await w.fetch('/v1/classes')).json()) as { classes: { name: string }[] }).classes[0]!.name).toBe('circle');
  });

  it('refuses an index whose model in the bucket is another model (503 with the reason)', async () => {
    const other = await startWorker();
    try {
      await other.publish(withSupport, modelDir);
      const manifest = JSON.parse(readFileSync(join(withSupport, 'manifest.json'), 'utf8'));
      const bucket = await other.mf.getR2Bucket('STORE');
      await bucket.put(modelKey(manifest.model.modelJsonSha256, 'model.json'), new Uint8Array(readFileSync(join(tinyModel('tiny-p8-bf16').modelDir, 'model.json'))).buffer);
      const r = await post(other, '/v1/classify', png);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/not the model the index was built for/);
      expect((await other.fetch('/v1/health')).status).toBe(503);
    } finally {
      await other.dispose();
    }
  });
});

describe('Worker last-good serving', () => {
  it('a corrupt new version never replaces the one being served; health reports it; it is retried after a back-off, not per request', { timeout: 120_000 }, async () => {
    const worker = await startWorker();
    try {
      const good = await worker.publish(withSupport, modelDir);
      expect((await post(worker, '/v1/classify', png)).status).toBe(200);
      // A version whose data.bin fails its hashes: the pointer moves to it.
      const bucket = await worker.mf.getR2Bucket('STORE');
      const data = new Uint8Array(readFileSync(join(withSupport, DATA_FILE)));
      data[data.length - 5]! ^= 0xff;
      await bucket.put('indexes/tiny/v-corrupt/manifest.json', new Uint8Array(readFileSync(join(withSupport, 'manifest.json'))));
      await bucket.put(`indexes/tiny/v-corrupt/${DATA_FILE}`, data);
      await bucket.put('indexes/tiny/current', 'v-corrupt');
      for (let i = 0; i < 4; i++) {
        const r = await post(worker, '/v1/classify', png);
        expect(r.status).toBe(200);
        expect(((await r.json()) as { index: { version: string } }).index.version).toBe(good.version);
      }
      const health = (await (await worker.fetch('/v1/health')).json()) as { status: string; failed_versions: { index: string; version: string; reason: string; attempts: number }[] };
      expect(health.status).toBe('ok');
      expect(health.failed_versions).toEqual([expect.objectContaining({ index: 'tiny', version: 'v-corrupt', attempts: 1 })]);
      expect(health.failed_versions[0]!.reason).toMatch(/does not match its sha256/);
      // A good version published after it is picked up at once.
      const fixed = await worker.publish(zeroShot, modelDir);
      const r = await post(worker, '/v1/classify', png);
      expect(((await r.json()) as { index: { version: string } }).index.version).toBe(fixed.version);
      expect(((await (await worker.fetch('/v1/health')).json()) as { failed_versions: unknown[] }).failed_versions).toEqual([]);
    } finally {
      await worker.dispose();
    }
  });
});

describe('Worker: every byte of an index is hashed', () => {
  it('a same-length edit of a published manifest (a class renamed) is refused: its sha256 is in current', { timeout: 60_000 }, async () => {
    const worker = await startWorker();
    try {
      const { version } = await worker.publish(withSupport, modelDir);
      const bucket = await worker.mf.getR2Bucket('STORE');
      expect((await (await bucket.get('indexes/tiny/current'))!.text()).split(' ')[0]).toBe(version);
      const manifest = readFileSync(join(withSupport, 'manifest.json'), 'utf8');
      expect(manifest).toContain('"circle"');
      await bucket.put(`indexes/tiny/${version}/manifest.json`, manifest.replace('"circle"', '"circlX"'));
      const r = await post(worker, '/v1/classify', png);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/manifest.json does not match the sha256 in indexes\/tiny\/current/);
    } finally {
      await worker.dispose();
    }
  });
});

describe('Worker engine weights', () => {
  it('a tampered or truncated blob in the bucket is a 503 naming the reason, never an answer', { timeout: 120_000 }, async () => {
    const info = readModelInfo(modelDir);
    const sha = modelJsonSha256(modelDir);
    const good = new Uint8Array(readFileSync(join(modelDir, info.files.engineWeights)));
    const tampered = good.slice();
    tampered[tampered.length - 100]! ^= 1;
    for (const [bytes, reason] of [
      [tampered, /engine weights of model tiny-p16: sha256 mismatch/],
      [good.subarray(0, good.length - 64), /blob size does not match its header/],
    ] as const) {
      const worker = await startWorker();
      try {
        await worker.publish(withSupport, modelDir);
        await (await worker.mf.getR2Bucket('STORE')).put(modelKey(sha, info.files.engineWeights), bytes.slice());
        const r = await post(worker, '/v1/classify', png);
        expect(r.status).toBe(503);
        expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(reason);
      } finally {
        await worker.dispose();
      }
    }
  });
});

describe('Worker model budget', () => {
  it('refuses to load a model whose memory estimate is over 128 MB (503 with the reason)', { timeout: 120_000 }, async () => {
    const { cpSync, writeFileSync: write } = await import('node:fs');
    const heavy = join(tempDir('heavy'), 'model');
    cpSync(modelDir, heavy, { recursive: true });
    const info = JSON.parse(readFileSync(join(heavy, 'model.json'), 'utf8'));
    info.workerMemory.totalBytes = 200 * 2 ** 20;
    info.workerMemory.fits = false;
    write(join(heavy, 'model.json'), JSON.stringify(info));
    const out = join(tempDir('heavy-index'), 'tiny');
    await buildIndex({ classes: join(EXAMPLES, 'shapes.txt'), model: heavy, out, shots: 1, dedup: 0.95, susPrompts: 'photo', batch: 8, device: 'cpu', cacheDir: tempDir('hc'), maxTuneQueries: 8, templates: join(EXAMPLES, 'shapes-templates.txt'), log: () => {}, progress: false });
    const worker = await startWorker();
    try {
      // publish refuses it; a Worker that finds one in its bucket anyway refuses it too.
      await expect(worker.publish(out, heavy)).rejects.toThrow(/does not fit a Worker: it needs about 200 MB of 128 MB/);
      const bucket = await worker.mf.getR2Bucket('STORE');
      const modelJson = readFileSync(join(heavy, 'model.json'));
      const sha = modelJsonSha256(heavy);
      const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
      await bucket.put(modelKey(sha, 'model.json'), new Uint8Array(modelJson));
      await bucket.put(modelKey(sha, info.files.engineWeights), new Uint8Array(readFileSync(join(heavy, info.files.engineWeights))));
      await bucket.put(`indexes/tiny/${manifest.version}/manifest.json`, new Uint8Array(readFileSync(join(out, 'manifest.json'))));
      await bucket.put(`indexes/tiny/${manifest.version}/${DATA_FILE}`, new Uint8Array(readFileSync(join(out, DATA_FILE))));
      await bucket.put('indexes/tiny/current', manifest.version);
      const r = await post(worker, '/v1/classify', png);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/needs about 200 MB \(image tower .* on the int8 engine\), over the Worker's 128 MB/);
    } finally {
      await worker.dispose();
    }
  });
});

describe('Worker auth', () => {
  it('Bearer keys from the secret; 401 without, 403 wrong; keys never echoed', async () => {
    const locked = await startWorker({ PUBLIC: 'false', API_KEYS: 'k-one, k-two-secret' });
    try {
      await locked.publish(withSupport, modelDir);
      const none = await post(locked, '/v1/classify', png);
      expect(none.status).toBe(401);
      const wrong = await post(locked, '/v1/classify', png, 'image/png', { authorization: 'Bearer k-two' });
      expect(wrong.status).toBe(403);
      expect(await wrong.text()).not.toMatch(/k-one|k-two-secret/);
      expect((await post(locked, '/v1/classify', png, 'image/png', { authorization: 'Bearer k-two-secret' })).status).toBe(200);
      expect((await locked.fetch('/v1/classes', { headers: { authorization: 'Bearer k-one' } })).status).toBe(200);
      expect((await locked.fetch('/v1/health')).status).toBe(200); // health stays open
    } finally {
      await locked.dispose();
    }
    const noKeys = await startWorker({ PUBLIC: 'false' });
    try {
      await noKeys.publish(withSupport, modelDir);
      const r = await post(noKeys, '/v1/classify', png, 'image/png', { authorization: 'Bearer x' });
      expect(r.status).toBe(503);
    } finally {
      await noKeys.dispose();
    }
  });
});

describe('Worker memory at ImageNet scale', () => {
  it('a TinyCLIP-shaped model with a 1,000-class × 16-shot index stays under 128 MB (WASM heap + index)', { timeout: 240_000 }, async () => {
    const { convertCheckpoint } = await import('../models/convert.js');
    const { TINY_VARIANTS, writeTinyCheckpoint } = await import('../models/tiny-checkpoints.js');
    const { syntheticIndex } = await import('./worker-harness.js');
    const ck = join(tempDir('tc-ck'), 'tinyclip'), model = join(tempDir('tc-model'), 'tinyclip');
    writeTinyCheckpoint(TINY_VARIANTS['tinyclip-shaped'], ck);
    convertCheckpoint(ck, model);
    const big = await startWorker({ DEFAULT_INDEX: 'bench' });
    try {
      await big.publish(syntheticIndex(model, 1000, 16), model);
      const r = await post(big, '/v1/classify?method=combined', renderPrompt('a red star', 1, 224));
      expect(r.status).toBe(200);
      const m = ((await (await big.fetch('/v1/health')).json()) as { memory: { total_bytes: number; limit_bytes: number } }).memory;
      expect(m.total_bytes).toBeLessThan(m.limit_bytes * 0.85); // headroom for a request's decode buffers
    } finally {
      await big.dispose();
    }
  });
});

describe('Worker work budget per request', () => {
  const errorOf = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;

  it('a request whose estimated memory is over REQUEST_MEMORY_MB is a 413 naming its parts, before any work; classify still fits', { timeout: 120_000 }, async () => {
    const worker = await startWorker({ REQUEST_MEMORY_MB: '0.5' });
    try {
      await worker.publish(withSupport, modelDir);
      const r = await post(worker, '/v1/segment?format=json', renderPrompt('a red star', 1, 256));
      expect(r.status).toBe(413);
      expect((await errorOf(r)).message).toMatch(/would need about \d+\.\d MB \(.*answer \d+\.\d MB.*\), over the 0\.5 MB a request may use here .* format=png/);
      expect((await post(worker, '/v1/classify', png)).status).toBe(200);
      const health = (await (await worker.fetch('/v1/health')).json()) as { memory: { requests_in_flight_bytes: number; total_bytes: number; wasm_heap_bytes: number; index_bytes: number } };
      expect(health.memory.requests_in_flight_bytes).toBe(0); // every reservation released, refusals included
      expect(health.memory.total_bytes).toBe(health.memory.wasm_heap_bytes + health.memory.index_bytes);
    } finally {
      await worker.dispose();
    }
  });

  it('a request past REQUEST_DEADLINE_MS is stopped between encoder passes: 503 deadline_exceeded with Retry-After', { timeout: 120_000 }, async () => {
    const worker = await startWorker({ REQUEST_DEADLINE_MS: '0' });
    try {
      await worker.publish(withSupport, modelDir);
      const r = await post(worker, '/v1/segment', png);
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
      expect((await errorOf(r)).code).toBe('deadline_exceeded');
    } finally {
      await worker.dispose();
    }
  });

  it('requests that fit alone but not together: the later ones are 503 busy with Retry-After, never over the budget', { timeout: 120_000 }, async () => {
    // A budget of 1.5 of these segmentations: one fits, two at once do not.
    const image = renderPrompt('a red star', 1, 192);
    const queries = JSON.parse(readFileSync(join(withSupport, 'manifest.json'), 'utf8')).counts.queries as number;
    const one = segmentWork(readImageHeader(image)!, readModelInfo(modelDir), { queries, shortSide: 224, format: 'png' });
    const worker = await startWorker({ REQUEST_MEMORY_MB: String((1.5 * one.bytes) / 2 ** 20) });
    try {
      await worker.publish(withSupport, modelDir);
      const answers = await Promise.all(Array.from({ length: 6 }, () => post(worker, '/v1/segment?format=png&size=224', image)));
      const statuses = answers.map((r) => r.status);
      expect(statuses).toContain(200);
      expect(statuses).toContain(503);
      for (const r of answers.filter((a) => a.status === 503)) {
        expect(r.headers.get('retry-after')).toBe('1');
        expect((await errorOf(r)).code).toBe('busy');
      }
    } finally {
      await worker.dispose();
    }
  });

  it('a 65535×1 PNG (512 bytes) is classified and segmented without the Images binding, with bounded work', async () => {
    const strip = encodePng({ width: 65535, height: 1, data: new Uint8Array(65535 * 3).fill(200), channels: 3, depth: 8 });
    expect(strip.length).toBeLessThan(1024);
    const c = await post(w, '/v1/classify', strip);
    expect(c.status).toBe(200);
    const s = await post(w, '/v1/segment?format=rle', strip);
    expect(s.status).toBe(200);
    expect(((await s.json()) as { width: number }).width).toBe(65535);
  });
});

describe('Worker under load with hostile segmentations', () => {
  it('c=16: valid classify requests all succeed, and their p99 stays within 2× the clean run’s', { timeout: 120_000 }, async () => {
    const worker = await startWorker({}, true);
    try {
      await worker.publish(withSupport, modelDir);
      const valid = renderPrompt('a red star', 1, 64);
      const seconds = 8; // npm run bench -- worker runs it for BENCH_LOAD_SECONDS (30)
      await hostileLoadRun(worker.url, valid, { seconds: 1, connections: 16, hostile: 0 }); // warm
      const clean = await hostileLoadRun(worker.url, valid, { seconds, connections: 16, hostile: 0 });
      const mixed = await hostileLoadRun(worker.url, valid, { seconds, connections: 16, hostile: 4 });
      console.log(`classify p50/p99: clean ${clean.classify.p50.toFixed(1)}/${clean.classify.p99.toFixed(1)} ms (${clean.classify.requests} requests), with hostile segmentations ${mixed.classify.p50.toFixed(1)}/${mixed.classify.p99.toFixed(1)} ms (${mixed.classify.requests}); segment statuses ${JSON.stringify(mixed.segment.statuses)}`);
      expect(clean.classify.failed).toBe(0);
      expect(mixed.classify.failed).toBe(0);
      expect(mixed.segment.requests).toBeGreaterThan(0);
      expect(mixed.classify.p99).toBeLessThanOrEqual(2 * clean.classify.p99);
    } finally {
      await worker.dispose();
    }
  });
});

describe('offline commands answer as the Worker does', () => {
  const runCli = async (args: string[]) => {
    const out: string[] = [], err: string[] = [];
    const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
    return { code, out, err };
  };

  it('classify: the same labels and logits (within 1e-3) for each method; an unreadable file is reported on its line, exit 1', async () => {
    const dir = tempDir('classify');
    writeFileSync(join(dir, 'star.png'), png);
    writeFileSync(join(dir, 'ring.jpg'), jpg);
    writeFileSync(join(dir, 'broken.png'), png.subarray(0, 60));
    for (const method of ['clip', 'calip', 'tipx', 'combined'] as const) {
      const { code, out } = await runCli(['classify', '--index', withSupport, '--method', method, '--top-k', '8', dir]);
      expect(code).toBe(1);
      const lines = out.map((l) => JSON.parse(l) as { file: string; error?: string; method: string; labels: { label: string; logit: number }[] });
      expect(lines.map((l) => l.file.split('/').pop())).toEqual(['broken.png', 'ring.jpg', 'star.png']);
      expect(lines[0]!.error).toMatch(/cannot decode png/);
      for (const [line, body, type] of [[lines[1]!, jpg, 'image/jpeg'], [lines[2]!, png, 'image/png']] as const) {
        const worker = ((await (await post(w, `/v1/classify?top_k=8&method=${method}`, body, type)).json()) as { labels: { label: string; logit: number }[] }).labels;
        expect(line.method).toBe(method);
        expect(line.labels.map((l) => l.label)).toEqual(worker.map((l) => l.label));
        line.labels.forEach((l, i) => expect(Math.abs(l.logit - worker[i]!.logit)).toBeLessThan(1e-3));
      }
    }
  });

  it('segment: the same label map as the Worker (rle), a palette PNG mask and an overlay', async () => {
    const dir = tempDir('segment');
    const image = renderPrompt('a red star', 3, 96);
    writeFileSync(join(dir, 'star.png'), image);
    const { code, out } = await runCli(['segment', '--index', withSupport, join(dir, 'star.png'), '--format', 'rle']);
    expect(code).toBe(0);
    const offline = JSON.parse(out[0]!) as { rle: number[]; width: number };
    const worker = (await (await post(w, '/v1/segment?format=rle', image)).json()) as { rle: number[] };
    expect(offline.rle).toEqual(worker.rle);
    const png = await runCli(['segment', '--index', withSupport, join(dir, 'star.png'), '--out', join(dir, 'mask.png'), '--overlay', join(dir, 'overlay.png')]);
    expect(png.code).toBe(0);
    expect(png.out.join('\n')).toMatch(/#[0-9a-f]{6}\s+\d+\.\d%\s+\w+/);
    const mask = decodePng(readFileSync(join(dir, 'mask.png')));
    const fromRle = offline.rle.flatMap((v, i) => (i % 2 === 0 ? new Array<number>(offline.rle[i + 1]!).fill(v) : []));
    expect(Array.from(mask.data)).toEqual(fromRle);
    expect(decodePng(readFileSync(join(dir, 'overlay.png'))).width).toBe(96);
  });
});

describe('segmentation variants in the Worker and offline', () => {
  it('last block, PAMR and thresholds per request: the Worker and the CLI give the same map; a choice the index cannot serve is a 422', { timeout: 120_000 }, async () => {
    const worker = await startWorker();
    try {
      await worker.publish(zeroShot, modelDir); // background | …, circle, square, …
      const image = renderPrompt('a red star', 3, 96);
      const file = join(tempDir('variants'), 'star.png');
      writeFileSync(file, image);
      for (const [query, flags] of [['', []], ['&attention=naclip&refine=pamr&steps=3', ['--attention', 'naclip', '--pamr', '--steps', '3']], ['&attention=clearclip&prob_thd=0.5&area_thd=0.2', ['--attention', 'clearclip', '--prob-thd', '0.5', '--area-thd', '0.2']], ['&attention=vanilla', ['--attention', 'vanilla']]] as const) {
        const r = await post(worker, `/v1/segment?format=rle${query}`, image);
        expect(r.status).toBe(200);
        const answer = (await r.json()) as { rle: number[]; attention: string; timings_ms: { refine?: number } };
        expect(answer.attention).toBe(flags[1] ?? 'csa');
        if (query.includes('pamr')) expect(answer.timings_ms.refine).toBeGreaterThanOrEqual(0);
        const out: string[] = [];
        expect(await main(['segment', '--index', zeroShot, file, '--format', 'rle', ...flags], { out: (t) => out.push(t), err: () => {} })).toBe(0);
        expect((JSON.parse(out[0]!) as { rle: number[] }).rle).toEqual(answer.rle);
      }
      const bad = await post(worker, '/v1/segment?attention=magic', image);
      expect(bad.status).toBe(422);
    } finally {
      await worker.dispose();
    }
    // An index without a background class has nowhere to send unsure pixels.
    const r = await post(w, '/v1/segment?prob_thd=0.2', png);
    expect(r.status).toBe(422);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/class named "background"/);
  });
});
