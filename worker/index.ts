// The edge API: classify (CLIP, CALIP, TIP-X, combined) and segment (CSA) over HTTP.
import { Router } from 'itty-router';
import { decodeImage, ImageDecodeError, sniffFormat } from '../core/decode.js';
import { encode as encodePng } from 'fast-png';
import { labelPng, palette, runLengths } from '../core/label-map.js';
import { randomScene } from '../eval/shapes-world.js';
import { WORKER_MEMORY_LIMIT } from '../core/model-info.js';
import { rejectOption, SegmentChoiceError, tooManyWindows, WorkBudgetError, type Ranked } from '../core/pipeline.js';
import { ScoringError, type Method } from '../core/scoring/methods.js';
import type { Attention } from '../core/encoders.js';
import { admissionHeader, classifyWork, decodedHeader, describeWork, MemoryAccount, segmentWork, type ImageHeader, type SegmentFormat, type WorkEstimate } from '../core/work-budget.js';
import { CLASSES_PARAMS, CLASSIFY_PARAMS, openApi, readParams, SEGMENT_PARAMS, type ParamSpec } from './api.js';
import { checkAuth, HttpError, json, readImageRequest, routerFetch } from './http.js';
import { labelCacheBytes, requestPipeline } from './labels.js';
import { kernelChoice } from '../engine/engine.js';
import { PAGE_HTML } from './page.js';
import { Store, towerWasmBytes } from './store.js';

export interface Env {
  STORE: R2Bucket;
  /** Cloudflare Images binding: when bound, large or WebP images are resized before decoding. */
  IMAGES?: ImagesBinding;
  RESIZE_MAX_SIDE?: string;
  DEFAULT_INDEX: string;
  PUBLIC?: string;
  API_KEYS?: string;
  MAX_BODY_BYTES?: string;
  MAX_PIXELS?: string;
  MAX_DECODE_MB?: string;
  RELOAD_CHECK_SECONDS?: string;
  /** Most image-encoder passes one segmentation may take (sliding windows). */
  SEGMENT_MAX_WINDOWS?: string;
  /** Most memory one request may allocate (MB); less when the model and indexes leave less of 128 MB. */
  REQUEST_MEMORY_MB?: string;
  /** A request still working after this many milliseconds is stopped: 503 with Retry-After. */
  REQUEST_DEADLINE_MS?: string;
  /** The engine's int8 kernel: auto (the fastest exact one here), relaxed or simd128. */
  ENGINE_KERNEL?: string;
  /** The text Worker (wrangler.text.toml), for labels given with a request. */
  TEXT?: Fetcher;
  /** Most labels one request may give (default 100). */
  MAX_LABELS?: string;
}

let store: Store | undefined;
function storeFor(env: Env): Store {
  store ??= new Store(env.STORE, 1000 * Number(env.RELOAD_CHECK_SECONDS ?? 30), kernelChoice(env.ENGINE_KERNEL));
  return store;
}

const MB = 2 ** 20;
const EXAMPLE_SEED = 7_700;
const limits = (env: Env) => ({
  body: Number(env.MAX_BODY_BYTES ?? 10 * MB),
  pixels: Number(env.MAX_PIXELS ?? 16_000_000),
  decodeMB: Number(env.MAX_DECODE_MB ?? 48),
  maxSide: Number(env.RESIZE_MAX_SIDE ?? 1024),
  requestBytes: Number(env.REQUEST_MEMORY_MB ?? 64) * MB,
  deadlineMs: Number(env.REQUEST_DEADLINE_MS ?? 15_000),
});

/** Memory the requests in flight in this isolate have reserved (work-budget.ts). */
const requestMemory = new MemoryAccount();

/** What the isolate holds outside requests: image towers, index scoring instances (WASM), index arrays (JS). */
async function residentMemory(s: Store): Promise<{ wasm: number; index: number; indexes: Awaited<ReturnType<Store['snapshot']>> }> {
  const indexes = await s.snapshot();
  return { indexes, index: indexes.reduce((a, i) => a + i.bytes, 0), wasm: (await towerWasmBytes()) + indexes.reduce((a, i) => a + i.wasm_bytes, 0) };
}

/**
 * Admits a request whose estimated work fits: alone over what a request may use is a 413
 * (it never could run here); over what the requests in flight leave is a 503 to retry.
 * Returns the release of its reservation.
 */
async function admit(env: Env, estimate: WorkEstimate, advice: string): Promise<() => void> {
  const { wasm, index } = await residentMemory(storeFor(env));
  const perRequest = Math.min(limits(env).requestBytes, WORKER_MEMORY_LIMIT - wasm - index - labelCacheBytes());
  const need = `this request would need about ${(estimate.bytes / MB).toFixed(1)} MB (${describeWork(estimate)})`;
  if (estimate.bytes > perRequest) {
    throw new HttpError('payload_too_large', `${need}, over the ${(perRequest / MB).toFixed(1)} MB a request may use here (REQUEST_MEMORY_MB, within what the model and indexes leave of 128 MB); ${advice}`);
  }
  const release = requestMemory.tryReserve(estimate.bytes, perRequest);
  if (!release) throw new HttpError('busy', `${need} and the requests in flight leave less; retry shortly`, { 'retry-after': '1' });
  return release;
}

/** Between units of work: let other requests in this isolate run, then check the deadline. */
function deadlineFor(env: Env, started: number): () => Promise<void> {
  const { deadlineMs } = limits(env);
  return async () => {
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (Date.now() - started > deadlineMs) {
      throw new HttpError('deadline_exceeded', `the request ran past its ${deadlineMs} ms deadline (REQUEST_DEADLINE_MS) and was stopped; retry later or ask for less work`, { 'retry-after': '5' });
    }
  };
}

/**
 * With an Images binding, a phone photo (or a WebP) is scaled down at the edge to at most
 * `maxSide` pixels a side and handed over as PNG, so jpeg-js never holds it at full size.
 */
async function shrink(images: ImagesBinding, bytes: Uint8Array, maxPixels: number, maxSide: number): Promise<{ bytes: Uint8Array; input: { width: number; height: number } }> {
  const stream = () => new Blob([bytes]).stream();
  let info: { format: string; width?: number; height?: number };
  try {
    info = (await images.info(stream())) as typeof info;
  } catch {
    // The same answer as without the binding: bytes of a known image format that cannot be
    // read are a 400, bytes of no image format a 415.
    const format = sniffFormat(bytes);
    if (format === 'unknown') throw new HttpError('unsupported_media_type', 'not a JPEG, PNG or WebP image');
    throw new HttpError('undecodable_image', `cannot decode ${format} image`);
  }
  const width = info.width ?? 0, height = info.height ?? 0;
  if (width * height > maxPixels) throw new HttpError('payload_too_large', `image has ${width * height} pixels, over the limit of ${maxPixels}`);
  const input = { width, height };
  if (Math.max(width, height) <= maxSide && (info.format === 'image/jpeg' || info.format === 'image/png')) return { bytes, input };
  // One side only: the aspect ratio is kept (and the local implementation agrees with the edge).
  const side = Math.min(maxSide, Math.max(width, height));
  const out = await images.input(stream()).transform(width >= height ? { width: side } : { height: side }).output({ format: 'image/png' });
  return { bytes: new Uint8Array(await out.response().arrayBuffer()), input };
}

/**
 * The request's image, decoded once its work (`estimate`, from the image's header) is admitted;
 * `release` ends its memory reservation and must be called when the request ends.
 */
async function decoded(bytes: Uint8Array, env: Env, estimate: (header: ImageHeader) => WorkEstimate, advice: string) {
  const { pixels, decodeMB, maxSide } = limits(env);
  const t = Date.now();
  let input: { width: number; height: number } | undefined;
  if (env.IMAGES) ({ bytes, input } = await shrink(env.IMAGES, bytes, pixels, maxSide));
  // From the header, before decoding; where only the decoder could read the image (a damaged
  // JPEG it resynchronised), from the decoded size, before any further work.
  const header = admissionHeader(bytes, pixels);
  let release = header ? await admit(env, estimate(header), advice) : () => {};
  try {
    const image = decodeImage(bytes, { maxPixels: pixels, maxDecodeMB: decodeMB });
    if (!header) release = await admit(env, estimate(decodedHeader(image)), advice);
    return { image, decodeMs: Date.now() - t, input: input ?? { width: image.width, height: image.height }, release };
  } catch (e) {
    release();
    if (!(e instanceof ImageDecodeError)) throw e;
    throw new HttpError(e.code === 'unsupported_media_type' ? 'unsupported_media_type' : e.code === 'too_large' ? 'payload_too_large' : 'undecodable_image', e.message);
  }
}

/** The common start of the authenticated routes: auth, parameters, the index's pipeline. */
async function begin(request: Request, env: Env, specs: ParamSpec[]) {
  await checkAuth(request, env.API_KEYS, env.PUBLIC === 'true');
  const params = readParams(new URL(request.url), specs);
  const name = (params.index as string | undefined) ?? env.DEFAULT_INDEX;
  return { params, name, ...(await storeFor(env).get(name)) };
}

/**
 * The start of classify and segment: `begin`, the body, and the pipeline to score with: the
 * index's, or with labels given with the request (labels.ts).
 */
async function beginImage(request: Request, env: Env, specs: ParamSpec[]) {
  const { params, name, pipeline: indexPipeline, version } = await begin(request, env, specs);
  const { bytes, fields } = await readImageRequest(request, limits(env).body);
  const given = await requestPipeline(env, { labels: params.labels as string | undefined, indexNamed: params.index !== undefined }, fields, indexPipeline);
  const index = given?.labelsOnly ? null : { name, version };
  return { params, name, index, bytes, pipeline: given?.pipeline ?? indexPipeline, requestLabels: given?.report, textMs: given?.ms };
}

const router = Router();

router.get('/', () => new Response(PAGE_HTML, { headers: { 'content-type': 'text/html; charset=utf-8' } }));
// Scenes of the embedded model's world for the page's examples (rendered, seeded: the same six always).
router.get('/examples/:file', (request: Request & { params: { file: string } }) => {
  const k = /^([0-5])\.png$/.exec(request.params.file)?.[1];
  if (k === undefined) throw new HttpError('not_found', 'examples are 0.png to 5.png');
  const scene = randomScene(EXAMPLE_SEED + Number(k));
  return new Response(encodePng({ width: 64, height: 64, data: scene.image.data, channels: 3, depth: 8 }), { headers: { 'content-type': 'image/png', 'cache-control': 'public, max-age=86400' } });
});
router.get('/openapi.json', () => json(openApi()));

router.get('/v1/health', async (_request: Request, env: Env) => {
  const s = storeFor(env);
  let status = 'ok', reason: string | undefined;
  try {
    await s.get(env.DEFAULT_INDEX);
  } catch (e) {
    status = 'unavailable';
    reason = (e as Error).message;
  }
  const { indexes, wasm, index } = await residentMemory(s);
  // JavaScript: the indexes' arrays and what the requests in flight reserved (decoded images, maps, answers).
  const inFlight = requestMemory.inFlightBytes, labels = labelCacheBytes();
  const memory = { wasm_heap_bytes: wasm, index_bytes: index, label_cache_bytes: labels, requests_in_flight_bytes: inFlight, total_bytes: wasm + index + labels + inFlight, limit_bytes: WORKER_MEMORY_LIMIT };
  const body = { status, reason, default_index: env.DEFAULT_INDEX, indexes, failed_versions: s.failedVersions(), memory };
  return json(body, status === 'ok' ? 200 : 503);
});

router.get('/v1/classes', async (request: Request, env: Env) => {
  const { name, pipeline, version } = await begin(request, env, CLASSES_PARAMS);
  const m = pipeline.index.manifest;
  return json({ index: { name, version }, model: m.model.name, classes: m.classes, support: m.support ? { images: m.counts.support, per_class: m.support.perClass } : null, hyperparameters: m.hyperparameters, default_method: pipeline.resolveMethod('auto') });
});

router.post('/v1/classify', async (request: Request, env: Env) => {
  const started = Date.now();
  const { params, name, index, bytes, pipeline, requestLabels, textMs } = await beginImage(request, env, CLASSIFY_PARAMS);
  const { image, decodeMs, release } = await decoded(bytes, env, (header) => classifyWork(header, pipeline.encoder.info), 'send a smaller image');
  const timings: { preprocess?: number; encode?: number } = {};
  let ranked: Ranked, method: Method, score: number;
  try {
    await deadlineFor(env, started)();
    const [features] = await pipeline.features([image], timings);
    const t = Date.now();
    method = pipeline.resolveMethod(params.method as Method | 'auto');
    ranked = pipeline.rank(await pipeline.score(features!, method), method, params.top_k as number, rejectOption(params.reject as string));
    score = Date.now() - t;
  } catch (e) {
    if (e instanceof ScoringError) throw new HttpError('invalid_parameter', `${e.message}: ${index ? `index ${name} has` : 'labels given with the request have'} no support set`);
    throw e;
  } finally {
    release();
  }
  return json({ answer: ranked.answer, labels: ranked.labels, method, calibrated: ranked.calibrated, reject_below: ranked.rejectBelow, index, request_labels: requestLabels, model: pipeline.encoder.info.name, timings_ms: { text: textMs, decode: decodeMs, preprocess: timings.preprocess, encode: timings.encode, score, total: Date.now() - started } });
});

router.post('/v1/segment', async (request: Request, env: Env) => {
  const started = Date.now();
  const { params, index, bytes, pipeline, requestLabels, textMs } = await beginImage(request, env, SEGMENT_PARAMS);
  const shortSide = params.size as number | undefined, format = params.format as SegmentFormat;
  let choices;
  try {
    choices = pipeline.segmentChoices({ attention: params.attention as Attention, pamrSteps: params.refine === 'pamr' ? (params.steps as number) : undefined, probThreshold: params.prob_thd as number | undefined, areaThreshold: params.area_thd as number | undefined });
  } catch (e) {
    if (e instanceof SegmentChoiceError) throw new HttpError('invalid_parameter', e.message);
    throw e;
  }
  const { refine, attention } = choices;
  const maxWindows = Number(env.SEGMENT_MAX_WINDOWS ?? 64);
  const work = (header: ImageHeader) => {
    const estimate = segmentWork(header, pipeline.encoder.info, { queries: pipeline.index.queries.rows, shortSide, format, refine });
    if (estimate.passes > maxWindows) throw new HttpError('invalid_parameter', tooManyWindows(estimate.shortSide, estimate.passes, maxWindows, pipeline.encoder.info.imageSize).message);
    return estimate;
  };
  const { image, decodeMs, input, release } = await decoded(bytes, env, work, 'send a smaller image, or ask for a smaller size, format=png, or an index with fewer classes');
  const names = pipeline.index.manifest.classes.map((c) => c.name);
  const t = Date.now();
  let labels: Uint16Array;
  const timings: { refine?: number } = {};
  try {
    // One window per encoder call, yielding between them: classify requests in this isolate are never starved.
    labels = await pipeline.segment(image, { shortSide, maxWindows, windowsPerPass: 1, between: deadlineFor(env, started), timings, ...choices });
  } catch (e) {
    release();
    if (e instanceof WorkBudgetError) throw new HttpError('invalid_parameter', e.message);
    throw e;
  }
  const segmentMs = Date.now() - t;
  try {
    const colours = palette(names);
    const legend = names.map((label, index) => ({ index, label, color: colours[index] }));
    // width/height: the label map; input: the uploaded image (larger when the Images binding shrank it).
    const meta = { width: image.width, height: image.height, input, legend, attention, index, request_labels: requestLabels, model: pipeline.encoder.info.name, timings_ms: { text: textMs, decode: decodeMs, segment: segmentMs, refine: timings.refine, total: Date.now() - started } };
    if (params.format === 'png') {
      if (names.length > 256) throw new HttpError('invalid_parameter', 'format=png holds at most 256 classes; use rle or json');
      const png = labelPng(labels, image.width, image.height, colours);
      return new Response(png, { headers: { 'content-type': 'image/png', 'x-nameonly-legend': JSON.stringify(legend.map((l) => ({ label: l.label, color: l.color }))) } });
    }
    if (params.format === 'rle') return json({ ...meta, rle: runLengths(labels) });
    return json({ ...meta, labels: Array.from(labels) });
  } finally {
    release(); // the answer is built: its memory is counted until here
  }
});

const KNOWN = { '/': 'GET', '/openapi.json': 'GET', '/v1/health': 'GET', '/v1/classes': 'GET', '/v1/classify': 'POST', '/v1/segment': 'POST' } as Record<string, string>;

router.all('*', (request: Request) => {
  const path = new URL(request.url).pathname;
  const allowed = KNOWN[path];
  if (allowed) throw new HttpError('method_not_allowed', `${request.method} is not allowed on ${path}; use ${allowed}`, { allow: allowed });
  throw new HttpError('not_found', `no route ${path}`);
});

export default { fetch: routerFetch<Env>(router, 'answering', 'Worker') };
