// The text Worker: CLIP's text tower on the int8 engine, reached only through the image
// Worker's service binding (no public route). An image tower and a text tower of a B-class
// model do not fit one 128 MB isolate, so each has its own. It embeds labels in templates
// (POST /v1/embed, core/request-labels.ts) with the model the image Worker names by the
// sha256 of its model.json; the weights are streamed from R2 once per isolate.
import { Router } from 'itty-router';
import { embedLabels, LabelError, parseEmbedRequest, type EmbedResponse } from '../../core/request-labels.js';
import { WORKER_JS_RESERVE, WORKER_MEMORY_LIMIT, type ModelInfo } from '../../core/model-info.js';
import { tokenizerFromFiles, type ClipTokenizer } from '../../core/tokenizer.js';
import { kernelChoice, TextEngine } from '../../engine/engine.js';
import { engineModules } from '../engine-modules.js';
import { HttpError, json, readJson, routerFetch } from '../http.js';
import { modelFile, readModelJson, streamTower } from '../r2.js';

export interface TextEnv {
  STORE: R2Bucket;
  /** The engine's int8 kernel: auto (the fastest exact one here), relaxed or simd128. */
  ENGINE_KERNEL?: string;
}

interface TextTower {
  info: ModelInfo;
  engine: TextEngine;
  tokenizer: ClipTokenizer;
  loadMs: number;
}

/** The largest embed request body: 100s of labels and templates of MAX_LABEL_CHARS fit well inside. */
const MAX_REQUEST_BYTES = 1 << 20;

const towers = new Map<string, Promise<TextTower>>();

async function openTower(env: TextEnv, modelJsonSha256: string): Promise<TextTower> {
  const t = Date.now();
  const info = await readModelJson(env.STORE, modelJsonSha256);
  const file = info.files.textEngineWeights;
  if (!file || !info.textEngine) throw new HttpError('unavailable', `model ${info.name} has no text engine blob (converted by an older version): convert and publish it again`);
  if (info.textEngine.memoryBytes > WORKER_MEMORY_LIMIT - WORKER_JS_RESERVE) throw new HttpError('unavailable', `the text tower of model ${info.name} needs ${Math.round(info.textEngine.memoryBytes / 2 ** 20)} MB, too much for a Worker`);
  const [engine, vocab, merges] = await Promise.all([
    streamTower(env.STORE, modelJsonSha256, info, file, 'text engine weights', (source) => TextEngine.load(engineModules, info, source, { kernel: kernelChoice(env.ENGINE_KERNEL) })),
    modelFile(env.STORE, modelJsonSha256, info, info.tokenizer.vocab, 'tokenizer vocabulary'),
    modelFile(env.STORE, modelJsonSha256, info, info.tokenizer.merges, 'tokenizer merges'),
  ]);
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { info, engine, tokenizer: tokenizerFromFiles(decode(vocab), decode(merges)), loadMs: Date.now() - t };
}

/** One load per model at a time; a failed load is tried again by the next request. */
function tower(env: TextEnv, modelJsonSha256: string): Promise<TextTower> {
  let entry = towers.get(modelJsonSha256);
  if (!entry) {
    entry = openTower(env, modelJsonSha256);
    towers.set(modelJsonSha256, entry);
    entry.catch(() => towers.delete(modelJsonSha256));
  }
  return entry;
}

const router = Router();

router.post('/v1/embed', async (request: Request, env: TextEnv) => {
  const body = await readJson(request, MAX_REQUEST_BYTES);
  let embed;
  try {
    embed = parseEmbedRequest(body);
  } catch (e) {
    if (e instanceof LabelError) throw new HttpError('invalid_parameter', e.message);
    throw e;
  }
  const first = !towers.has(embed.model);
  const t = await tower(env, embed.model);
  const load = first ? t.loadMs : 0;
  const encodeStart = Date.now();
  const { W, truncated } = embedLabels((texts) => t.engine.encodeMany(texts), t.tokenizer, t.info, embed.labels, embed.templates);
  const embeddings = Array.from({ length: W.rows }, (_, r) => Array.from(W.data.subarray(r * W.cols, (r + 1) * W.cols)));
  const answer: EmbedResponse = { model: t.info.name, embed_dim: W.cols, embeddings, truncated, timings_ms: { load, encode: Date.now() - encodeStart } };
  return json(answer);
});

router.get('/v1/health', async () => {
  const loaded = [];
  for (const entry of towers.values()) {
    const t = await entry.catch(() => null);
    if (t) loaded.push({ model: t.info.name, kernel: t.engine.kernel, wasm_bytes: t.engine.memoryBytes, load_ms: t.loadMs });
  }
  const wasm = loaded.reduce((a, t) => a + t.wasm_bytes, 0);
  return json({ status: 'ok', models: loaded, memory: { wasm_heap_bytes: wasm, limit_bytes: WORKER_MEMORY_LIMIT } });
});

router.all('*', (request: Request) => {
  throw new HttpError('not_found', `no route ${new URL(request.url).pathname} (the text Worker answers POST /v1/embed and GET /v1/health)`);
});

export default { fetch: routerFetch<TextEnv>(router, 'embedding', 'text Worker') };
