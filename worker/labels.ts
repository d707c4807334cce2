// Labels given with a request: their classifier rows from the isolate's cache, then the shared
// cache in R2, then the text Worker (TEXT service binding). Keyed by (model, template set, label):
// a label costs one text-tower pass per template the first time it is seen, nothing after.
import { sha256Hex } from '../core/index-format.js';
import { matrix, type Matrix } from '../core/linalg.js';
import { Pipeline } from '../core/pipeline.js';
import { checkLabels, DEFAULT_MAX_LABELS, LabelError, labelsOnlyIndex, parseEmbedResponse, splitLabels, type EmbedRequest } from '../core/request-labels.js';
import { modelId } from '../core/storage-layout.js';
import { HttpError, type RequestFields } from './http.js';

export interface LabelEmbeddings {
  /** [labels, D] classifier rows, in the order asked. */
  W: Matrix;
  /** Labels a prompt of which was cut to CLIP's 77 tokens. */
  truncated: string[];
  cache: { isolate: number; shared: number; encoded: number };
  /** Milliseconds spent getting the rows (cache reads and the text Worker). */
  ms: number;
}

interface Entry {
  row: Float32Array;
  truncated: boolean;
}

/** The isolate's cache, least recently used first; bounded in bytes (it counts toward the isolate's memory). */
const isolateCache = new Map<string, Entry>();
export const ISOLATE_CACHE_BYTES = 4 * 2 ** 20;
let cachedBytes = 0;

export function labelCacheBytes(): number {
  return cachedBytes;
}

function remember(key: string, entry: Entry): void {
  if (isolateCache.has(key)) return;
  isolateCache.set(key, entry);
  cachedBytes += entry.row.byteLength;
  for (const [oldest, e] of isolateCache) {
    if (cachedBytes <= ISOLATE_CACHE_BYTES) break;
    isolateCache.delete(oldest);
    cachedBytes -= e.row.byteLength;
  }
}

const sha256 = (text: string) => sha256Hex(new TextEncoder().encode(text));

/** The text Worker's rows for `labels`; every way it can fail is a 503 naming the reason, never a wrong answer. */
async function fromTextWorker(text: Fetcher | undefined, request: EmbedRequest, embedDim: number) {
  if (!text) throw new HttpError('unavailable', 'labels= needs the text Worker, and no TEXT service binding is configured (wrangler.toml [[services]]; `npm run deploy` deploys both Workers)');
  let response: Response;
  try {
    response = await text.fetch('https://text.internal/v1/embed', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  } catch (e) {
    throw new HttpError('unavailable', `the text Worker is unreachable: ${(e as Error).message}`, { 'retry-after': '5' });
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw new HttpError('unavailable', `the text Worker answered ${response.status} without JSON`, { 'retry-after': '5' });
  }
  if (!response.ok) {
    const message = (body as { error?: { message?: string } }).error?.message ?? 'no reason given';
    throw new HttpError('unavailable', `the text Worker could not embed the labels (${response.status}): ${message}`, { 'retry-after': '5' });
  }
  try {
    return parseEmbedResponse(body, request, embedDim);
  } catch (e) {
    throw new HttpError('unavailable', (e as Error).message);
  }
}

/** The classifier rows of request labels for a model (by its model.json sha256). */
export async function labelEmbeddings(env: { STORE: R2Bucket; TEXT?: Fetcher }, model: { modelJsonSha256: string; embedDim: number }, labels: string[], templates: string[]): Promise<LabelEmbeddings> {
  const started = Date.now();
  const D = model.embedDim;
  const templateSet = (await sha256(JSON.stringify(templates))).slice(0, 16);
  const keys = await Promise.all(labels.map(async (label) => `label-embeddings/${modelId(model.modelJsonSha256)}/${templateSet}/${await sha256(label)}`));
  const found: (Entry | undefined)[] = keys.map((key) => {
    const entry = isolateCache.get(key);
    if (entry) (isolateCache.delete(key), isolateCache.set(key, entry)); // most recently used
    return entry;
  });
  const cache = { isolate: found.filter(Boolean).length, shared: 0, encoded: 0 };
  // The shared cache: one R2 read per label the isolate lacks (a damaged object is a miss).
  await Promise.all(
    keys.map(async (key, i) => {
      if (found[i]) return;
      const object = await env.STORE.get(key).catch(() => null);
      if (!object) return;
      const bytes = new Uint8Array(await object.arrayBuffer());
      if (bytes.byteLength !== 4 * D) return;
      found[i] = { row: new Float32Array(bytes.buffer), truncated: object.customMetadata?.truncated === 'true' };
      cache.shared++;
    }),
  );
  const missing = labels.flatMap((label, i) => (found[i] ? [] : [{ label, i }]));
  if (missing.length > 0) {
    const answer = await fromTextWorker(env.TEXT, { model: model.modelJsonSha256, labels: missing.map((m) => m.label), templates }, D);
    cache.encoded = missing.length;
    await Promise.all(
      missing.map(async ({ i }, k) => {
        const entry = { row: Float32Array.from(answer.embeddings[k]!), truncated: answer.truncated[k]! };
        found[i] = entry;
        await env.STORE.put(keys[i]!, entry.row, { customMetadata: { truncated: String(entry.truncated) } }).catch(() => undefined); // a cache write that fails costs a later re-encode only
      }),
    );
  }
  const W = new Float32Array(labels.length * D);
  found.forEach((entry, i) => {
    W.set(entry!.row, i * D);
    remember(keys[i]!, entry!);
  });
  return { W: matrix(W, labels.length, D), truncated: labels.filter((_, i) => found[i]!.truncated), cache, ms: Date.now() - started };
}

/** What the answer says about the labels given with the request. */
export interface RequestLabelsReport {
  count: number;
  templates: string[];
  /** Where each label's row came from: this isolate, the shared cache in R2, or the text Worker now. */
  cache: { isolate: number; shared: number; encoded: number };
  truncated: string[];
  note?: string;
}

/**
 * The pipeline a request scores with when it brings labels (labels= or the body's): an index of
 * those labels alone when no index is named (the default index's model embeds them), else the
 * named index with the labels added. Undefined without labels. Bad labels: 422 naming the label.
 */
export async function requestPipeline(
  env: { STORE: R2Bucket; TEXT?: Fetcher; MAX_LABELS?: string },
  query: { labels?: string; indexNamed: boolean },
  fields: RequestFields,
  indexPipeline: Pipeline,
): Promise<{ pipeline: Pipeline; labelsOnly: boolean; report: RequestLabelsReport; ms: number } | undefined> {
  if (query.labels !== undefined && fields.labels !== undefined) throw new HttpError('invalid_parameter', 'labels are given twice: in the query and in the body');
  const raw = query.labels !== undefined ? splitLabels(query.labels) : fields.labels;
  if (raw === undefined) {
    if (fields.templates !== undefined) throw new HttpError('invalid_parameter', 'templates are given without labels');
    return undefined;
  }
  const labelsOnly = !query.indexNamed;
  const m = indexPipeline.index.manifest;
  let checked;
  try {
    checked = checkLabels(raw, fields.templates, Number(env.MAX_LABELS ?? DEFAULT_MAX_LABELS), labelsOnly ? [] : m.classes.map((c) => c.name));
  } catch (e) {
    if (e instanceof LabelError) throw new HttpError('invalid_parameter', e.message);
    throw e;
  }
  const { labels, templates } = checked;
  const rows = await labelEmbeddings(env, m.model, labels, templates);
  const pipeline = labelsOnly ? new Pipeline(indexPipeline.encoder, labelsOnlyIndex(labels, rows.W, m.model)) : indexPipeline.withLabels(labels, rows.W);
  const note = !labelsOnly && indexPipeline.index.support ? `TIP-X scores only the ${m.counts.classes} classes of index ${m.name} (they have support images); the ${labels.length} labels given get zero-shot scores, and no score is calibrated` : undefined;
  return { pipeline, labelsOnly, report: { count: labels.length, templates, cache: rows.cache, truncated: rows.truncated, note }, ms: rows.ms };
}
