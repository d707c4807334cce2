// Labels given with a request (labels=): their limits, the classifier built from their text
// embeddings, and the one schema of what the image Worker asks the text Worker. Pure: the
// Worker and the CLI do the I/O.
import { matrix, type Matrix } from './linalg.js';
import { fillTemplate, textClassifier } from './scoring/classifier.js';
import { pooledTokens, type ClipTokenizer } from './tokenizer.js';
import { DEFAULT_HYPERPARAMETERS } from './scoring/methods.js';
import type { LoadedIndex } from './index-format.js';

/** CLIP's single ImageNet prompt (Radford et al. 2021): what a label is embedded in unless templates are given. */
export const DEFAULT_LABEL_TEMPLATES = ['a photo of a {}.'];
/** Default most labels per request (MAX_LABELS in wrangler.toml). */
export const DEFAULT_MAX_LABELS = 100;
/** Longest label and template, in characters: bounds the tokenizer's work before any is done (CLIP reads 75 tokens of it at most). */
export const MAX_LABEL_CHARS = 300;
export const MAX_TEMPLATES = 16;
/**
 * Most prompts (labels × templates) one request may have embedded: each costs the text tower
 * ~6 ms at ViT-B/32's size in workerd, so this bounds a request's text work to a few seconds.
 */
export const MAX_PROMPTS = 400;

/** A label or template the request may not have: 422, its message naming it. */
export class LabelError extends Error {}

/** labels= of a query: comma-separated, each trimmed (a label with a comma goes in a JSON body). */
export function splitLabels(text: string): string[] {
  return text.split(',').map((l) => l.trim());
}

/**
 * Checks a request's labels and templates before any work: none empty, none repeated (ignoring
 * case and surrounding space, also against the index's own classes), at most `maxLabels`, none
 * over MAX_LABEL_CHARS; templates at most MAX_TEMPLATES, each with a `{}`.
 */
export function checkLabels(labels: unknown, templates: unknown, maxLabels: number, indexClasses: string[] = []): { labels: string[]; templates: string[] } {
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new LabelError('labels must be a list of strings');
  if (labels.length === 0) throw new LabelError('labels is empty: give at least one label');
  if (labels.length > maxLabels) throw new LabelError(`${labels.length} labels, over the limit of ${maxLabels} (MAX_LABELS)`);
  const seen = new Map(indexClasses.map((name) => [name.trim().toLowerCase(), `a class of the index`]));
  const out: string[] = [];
  for (const [i, raw] of (labels as string[]).entries()) {
    const label = raw.trim();
    if (label === '') throw new LabelError(`label ${i + 1} of ${labels.length} is empty`);
    if (label.length > MAX_LABEL_CHARS) throw new LabelError(`label "${label.slice(0, 40)}…" is ${label.length} characters, over ${MAX_LABEL_CHARS}`);
    const key = label.toLowerCase();
    const before = seen.get(key);
    if (before) throw new LabelError(`label "${label}" is given twice (the same as ${before})`);
    seen.set(key, `label "${label}"`);
    out.push(label);
  }
  if (templates === undefined) return { labels: out, templates: DEFAULT_LABEL_TEMPLATES };
  if (!Array.isArray(templates) || templates.length === 0 || !templates.every((t) => typeof t === 'string')) throw new LabelError('templates must be a non-empty list of strings');
  if (templates.length > MAX_TEMPLATES) throw new LabelError(`${templates.length} templates, over the limit of ${MAX_TEMPLATES}`);
  for (const t of templates as string[]) {
    if (!t.includes('{}')) throw new LabelError(`template "${t.slice(0, 60)}" has no {} for the label`);
    if (t.length > MAX_LABEL_CHARS) throw new LabelError(`a template is ${t.length} characters, over ${MAX_LABEL_CHARS}`);
  }
  if (out.length * templates.length > MAX_PROMPTS) throw new LabelError(`${out.length} labels × ${templates.length} templates are ${out.length * templates.length} prompts to embed, over the limit of ${MAX_PROMPTS}: give fewer labels or templates`);
  return { labels: out, templates: templates as string[] };
}

/** The text Worker's request: embed these labels, each in every template, with this model. */
export interface EmbedRequest {
  /** sha256 of the model's model.json (its key in R2). */
  model: string;
  labels: string[];
  templates: string[];
}

/** Its answer: per label the classifier row (normalised mean of its normalised prompt embeddings). */
export interface EmbedResponse {
  model: string;
  embed_dim: number;
  embeddings: number[][];
  /** Per label: whether a prompt of it was cut to CLIP's context (77 tokens). */
  truncated: boolean[];
  timings_ms: { load: number; encode: number };
}

export function parseEmbedRequest(value: unknown): EmbedRequest {
  const r = value as Partial<EmbedRequest> | null;
  if (!r || typeof r !== 'object' || typeof r.model !== 'string' || !/^[0-9a-f]{64}$/.test(r.model)) throw new LabelError('model must be the sha256 of a model.json');
  const checked = checkLabels(r.labels, r.templates, Number.MAX_SAFE_INTEGER);
  return { model: r.model, ...checked };
}

/** Validates the text Worker's answer to `request` (the image Worker never scores with a malformed one). */
export function parseEmbedResponse(value: unknown, request: EmbedRequest, embedDim: number): EmbedResponse {
  const r = value as Partial<EmbedResponse> | null;
  const n = request.labels.length;
  const ok =
    !!r && r.embed_dim === embedDim && Array.isArray(r.embeddings) && r.embeddings.length === n && Array.isArray(r.truncated) && r.truncated.length === n &&
    r.embeddings.every((row) => Array.isArray(row) && row.length === embedDim && row.every(Number.isFinite)) && r.truncated.every((t) => typeof t === 'boolean') && typeof r.timings_ms === 'object';
  if (!ok) throw new Error(`the text Worker's answer is not ${n} embeddings of ${embedDim} values`);
  return r as EmbedResponse;
}

/**
 * The classifier rows of labels: each label in every template, through the text tower
 * (`encodeMany`: each text's tokens up to the pooled one -> its embedding), normalised and averaged
 * per label (textClassifier). The text Worker and the offline CLI both embed labels with this.
 */
export function embedLabels(encodeMany: (texts: number[][]) => Float32Array[], tokenizer: ClipTokenizer, model: { contextLength: number; eosTokenId: number; embedDim: number }, labels: string[], templates: string[]): { W: Matrix; truncated: boolean[] } {
  const D = model.embedDim;
  const texts = labels.flatMap((label) => templates.map((template) => tokenizer.tokenizeChecked(fillTemplate(template, label), model.contextLength)));
  const embeds = encodeMany(texts.map((t) => pooledTokens(t.ids, model.eosTokenId)));
  const prompts = new Float32Array(texts.length * D);
  embeds.forEach((e, i) => prompts.set(e, i * D));
  const cut = texts.map((t) => t.truncated);
  const truncated = labels.map((_, l) => cut.slice(l * templates.length, (l + 1) * templates.length).some(Boolean));
  return { W: textClassifier(matrix(prompts, texts.length, D), new Array(labels.length).fill(templates.length)), truncated };
}

/**
 * An index of request labels only (no index named): zero-shot classes, no support set, CALIP's
 * published parameters; held in memory, so it has no data file.
 */
export function labelsOnlyIndex(labels: string[], W: Matrix, model: { name: string; modelJsonSha256: string }): LoadedIndex {
  const none = { dtype: 'float32' as const, shape: [0], byteOffset: 0, byteLength: 0, sha256: '' };
  const C = labels.length;
  return {
    manifest: {
      format: 'nameonly-index',
      schemaVersion: 1,
      name: 'request labels',
      version: 'request',
      createdAt: new Date(0).toISOString(),
      model: { ...model, embedDim: W.cols },
      classes: labels.map((name) => ({ name, synonyms: [] })),
      prompts: { templates: [], descriptions: 0 },
      counts: { classes: C, queries: C, support: 0 },
      blobs: { textClassifier: none, queries: none, queryClass: none },
      support: null,
      hyperparameters: DEFAULT_HYPERPARAMETERS,
      data: { file: 'data.bin', byteLength: 0, sha256: '' },
    },
    textClassifier: W,
    queries: W,
    queryClass: Int32Array.from({ length: C }, (_, c) => c),
    support: null,
  };
}

/**
 * An index with request labels added after its own classes: one more classifier row and one
 * more segmentation query each. The support set stays the index's (its classes only), and the
 * scores stay raw: the index's temperatures were fitted on its own classes.
 */
export function withRequestLabels(index: LoadedIndex, labels: string[], W: Matrix): LoadedIndex {
  const m = index.manifest, C = m.counts.classes, D = W.cols;
  const stack = (a: Matrix) => {
    const data = new Float32Array((a.rows + W.rows) * D);
    data.set(a.data);
    data.set(W.data, a.rows * D);
    return matrix(data, a.rows + W.rows, D);
  };
  const queryClass = new Int32Array(index.queryClass.length + labels.length);
  queryClass.set(index.queryClass);
  labels.forEach((_, i) => (queryClass[index.queryClass.length + i] = C + i));
  const { calibration: _fitted, ...hyperparameters } = m.hyperparameters;
  return {
    ...index,
    manifest: { ...m, classes: [...m.classes, ...labels.map((name) => ({ name, synonyms: [] }))], counts: { ...m.counts, classes: C + labels.length, queries: m.counts.queries + labels.length }, hyperparameters },
    textClassifier: stack(index.textClassifier),
    queries: stack(index.queries),
    queryClass,
  };
}
