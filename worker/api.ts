// The HTTP API's schemas: query parameters are validated with these same definitions
// that /openapi.json publishes.
import { ATTENTION_NAMES, ATTENTIONS, DEFAULT_ATTENTION } from '../core/encoders.js';
import { REJECT_PATTERN } from '../core/pipeline.js';
import { DEFAULT_LABEL_TEMPLATES, DEFAULT_MAX_LABELS } from '../core/request-labels.js';
import { METHODS } from '../core/scoring/methods.js';
import { PAMR_DEFAULTS } from '../core/scoring/pamr.js';
import { SEGMENT_PROB_THRESHOLD } from '../core/scoring/segment.js';
import { HttpError } from './http.js';

type ParamSchema = { type: 'integer' | 'number'; minimum: number; maximum: number; default?: number } | { type: 'string'; enum?: readonly string[]; default?: string; pattern?: string };

export interface ParamSpec {
  name: string;
  description: string;
  schema: ParamSchema;
}

const indexParam: ParamSpec = { name: 'index', description: 'index name (default: the DEFAULT_INDEX var; with labels and no index, the labels alone are classified with the default index\'s model)', schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } };
const labelsParam: ParamSpec = {
  name: 'labels',
  description: `comma-separated labels to score as zero-shot classes, no index needed (also a "labels" list in a JSON or multipart body, with optional "templates", default ${JSON.stringify(DEFAULT_LABEL_TEMPLATES)}); with index=, added to its classes. At most MAX_LABELS (default ${DEFAULT_MAX_LABELS}); an empty or repeated label is a 422 naming it; the text Worker embeds them once, then they are cached`,
  schema: { type: 'string' },
};

export const CLASSIFY_PARAMS: ParamSpec[] = [
  { name: 'top_k', description: 'labels to return', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 5 } },
  { name: 'method', description: 'auto = what the index chose: CLIP unless another method\'s leave-one-out gain over it on the support set is beyond noise (paired test, z >= 2; then the most accurate), CALIP without a support set', schema: { type: 'string', enum: ['auto', ...METHODS], default: 'auto' } },
  labelsParam,
  { name: 'reject', description: 'answer "none of these" when the top calibrated probability is under a threshold: auto = the index\'s (fitted on its support set and images of no class; none without a support set), off, or a number in [0, 1]', schema: { type: 'string', pattern: REJECT_PATTERN, default: 'auto' } },
  indexParam,
];

export const SEGMENT_PARAMS: ParamSpec[] = [
  { name: 'format', description: 'png: palette image of class indices at the input size; rle: run-length labels; json: labels array', schema: { type: 'string', enum: ['png', 'rle', 'json'], default: 'json' } },
  { name: 'size', description: 'short side the image is resized to before sliding windows (default 1.5 × the model input; images more elongated than 4:1 are squeezed to it); a size needing more than SEGMENT_MAX_WINDOWS encoder passes (default 64) is a 422', schema: { type: 'integer', minimum: 16, maximum: 2048 } },
  { name: 'attention', description: `the last block's attention for the patch features: ${ATTENTIONS.map((a) => `${a} (${ATTENTION_NAMES[a]})`).join(', ')}; one the model does not carry is a 422`, schema: { type: 'string', enum: ATTENTIONS, default: DEFAULT_ATTENTION } },
  { name: 'refine', description: 'pamr: pixel-adaptive mask refinement of the class maps at the image size (SCLIP/NACLIP recipe: dilations 8 and 16); its time is timings_ms.refine', schema: { type: 'string', enum: ['none', 'pamr'], default: 'none' } },
  { name: 'steps', description: 'PAMR iterations', schema: { type: 'integer', minimum: 1, maximum: 20, default: PAMR_DEFAULTS.steps } },
  { name: 'prob_thd', description: `pixels whose best class probability is under this become background (SCLIP's prob_thd; default ${SEGMENT_PROB_THRESHOLD} when the index has a class named "background", off otherwise; needs such a class)`, schema: { type: 'number', minimum: 0, maximum: 1 } },
  labelsParam,
  { name: 'area_thd', description: 'classes covering less than this fraction of the foreground become background (SCLIP\'s area_thd; off by default; needs a "background" class)', schema: { type: 'number', minimum: 0, maximum: 1 } },
  indexParam,
];

export const CLASSES_PARAMS: ParamSpec[] = [indexParam];

export function readParams(url: URL, specs: ParamSpec[]): Record<string, string | number | undefined> {
  const out: Record<string, string | number | undefined> = {};
  for (const key of url.searchParams.keys()) {
    if (!specs.some((s) => s.name === key)) throw new HttpError('invalid_parameter', `unknown parameter "${key}" (allowed: ${specs.map((s) => s.name).join(', ')})`);
  }
  for (const { name, schema } of specs) {
    const raw = url.searchParams.get(name);
    if (raw === null) {
      out[name] = schema.default;
      continue;
    }
    if (schema.type === 'string') {
      if (schema.enum && !schema.enum.includes(raw)) throw new HttpError('invalid_parameter', `${name} must be one of ${schema.enum.join(', ')}`);
      if (schema.pattern && !new RegExp(schema.pattern).test(raw)) throw new HttpError('invalid_parameter', `${name} must match ${schema.pattern}`);
      out[name] = raw;
    } else {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!(schema.type === 'number' ? Number.isFinite(n) : Number.isInteger(n)) || n < schema.minimum || n > schema.maximum) throw new HttpError('invalid_parameter', `${name} must be ${schema.type === 'integer' ? 'an integer' : 'a number'} from ${schema.minimum} to ${schema.maximum}`);
      out[name] = n;
    }
  }
  return out;
}

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

const indexSchema = { type: ['object', 'null'], description: 'null when only the labels given with the request were scored', properties: { name: { type: 'string' }, version: { type: 'string' } } };

const requestLabelsSchema = {
  type: 'object',
  description: 'present when labels were given with the request',
  properties: {
    count: { type: 'integer' },
    templates: { type: 'array', items: { type: 'string' } },
    cache: { type: 'object', description: 'where each label\'s embedding came from: this isolate, the shared cache (R2), or the text Worker now', properties: { isolate: { type: 'integer' }, shared: { type: 'integer' }, encoded: { type: 'integer' } } },
    truncated: { type: 'array', items: { type: 'string' }, description: 'labels a prompt of which was cut to CLIP\'s 77 tokens' },
    note: { type: 'string', description: 'with an index that has a support set: TIP-X scores only its classes' },
  },
};

const labelsSchema = {
  type: 'object',
  required: ['answer', 'labels', 'method', 'calibrated', 'reject_below', 'index', 'model', 'timings_ms'],
  properties: {
    answer: { type: 'string', description: 'the top label, or "none of these" when its probability is under reject_below' },
    labels: { type: 'array', items: { type: 'object', required: ['label', 'score', 'logit'], properties: { label: { type: 'string' }, score: { type: 'number', description: 'probability: softmax(logits / T), T the index\'s temperature for the method when calibrated' }, logit: { type: 'number' } } } },
    calibrated: { type: 'boolean', description: 'false for an index without a support set (nothing to calibrate on): raw softmax' },
    reject_below: { type: ['number', 'null'] },
    method: { type: 'string', enum: METHODS },
    index: indexSchema,
    request_labels: requestLabelsSchema,
    model: { type: 'string' },
    timings_ms: { type: 'object', description: 'text: getting the rows of the labels given (cache or text Worker)', properties: Object.fromEntries(['text', 'decode', 'preprocess', 'encode', 'score', 'total'].map((k) => [k, { type: 'number' }])) },
  },
};

const legendSchema = { type: 'array', items: { type: 'object', required: ['index', 'label', 'color'], properties: { index: { type: 'integer' }, label: { type: 'string' }, color: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 255 }, minItems: 3, maxItems: 3 } } } };

const segmentationSchema = {
  type: 'object',
  required: ['width', 'height', 'input', 'legend', 'index', 'model', 'timings_ms'],
  properties: {
    width: { type: 'integer', description: 'width of the label map (the decoded image; smaller than the upload when the Images binding shrank it)' },
    height: { type: 'integer' },
    input: { type: 'object', description: 'the uploaded image', properties: { width: { type: 'integer' }, height: { type: 'integer' } } },
    legend: legendSchema,
    index: indexSchema,
    request_labels: requestLabelsSchema,
    model: { type: 'string' },
    timings_ms: { type: 'object', properties: Object.fromEntries(['text', 'decode', 'segment', 'refine', 'total'].map((k) => [k, { type: 'number' }])) },
    attention: { type: 'string', enum: ATTENTIONS },
    labels: { type: 'array', items: { type: 'integer' }, description: 'format=json: the class index of every pixel, row by row' },
    rle: { type: 'array', items: { type: 'integer' }, description: 'format=rle: [class, run length, class, run length, …], row by row' },
  },
};

const imageBody = {
  required: true,
  content: {
    'image/jpeg': { schema: { type: 'string', format: 'binary' } },
    'image/png': { schema: { type: 'string', format: 'binary' } },
    'multipart/form-data': { schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' }, labels: { type: 'string', description: 'JSON list or comma-separated' }, templates: { type: 'string', description: 'JSON list, each with {}' } } } },
    'application/json': { schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', description: 'base64' }, labels: { type: 'array', items: { type: 'string' } }, templates: { type: 'array', items: { type: 'string' } } } } },
  },
};

const errors = Object.fromEntries(
  [
    ['400', 'undecodable image or malformed request'],
    ['401', 'missing API key'],
    ['403', 'invalid API key'],
    ['413', 'body over MAX_BODY_BYTES, image over MAX_PIXELS or MAX_DECODE_MB, or the request’s estimated memory over REQUEST_MEMORY_MB (the message names its parts)'],
    ['415', 'unsupported content type or image format'],
    ['422', 'invalid parameter; a label that is empty, repeated or too long (named in the message), or too many labels'],
    ['503', 'model or index not available (with the reason); the text Worker unreachable for labels= (with the reason); busy (the requests in flight leave too little memory) or deadline_exceeded (REQUEST_DEADLINE_MS), both with Retry-After'],
  ].map(([code, description]) => [code, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
);

const parameters = (specs: ParamSpec[]) => specs.map((p) => ({ name: p.name, in: 'query', description: p.description, schema: p.schema }));

export function openApi(): unknown {
  const security = [{ bearer: [] }];
  return {
    openapi: '3.1.0',
    info: { title: 'nameonly', version: '1', description: 'Zero-shot image classification and segmentation from class names only (CLIP, CALIP, TIP-X, SCLIP CSA).' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: errorSchema, Classification: labelsSchema, Segmentation: segmentationSchema } },
    paths: {
      '/v1/classify': { post: { summary: 'classify an image', security, parameters: parameters(CLASSIFY_PARAMS), requestBody: imageBody, responses: { '200': { description: 'top-k labels', content: { 'application/json': { schema: { $ref: '#/components/schemas/Classification' } } } }, ...errors } } },
      '/v1/segment': { post: { summary: 'per-pixel classes from CSA features', security, parameters: parameters(SEGMENT_PARAMS), requestBody: imageBody, responses: {
            '200': {
              description: 'the label map with its legend',
              headers: { 'x-nameonly-legend': { description: 'format=png: the legend, JSON [{label, color}] in class-index order', schema: { type: 'string' } } },
              content: {
                'application/json': { schema: { $ref: '#/components/schemas/Segmentation' } },
                'image/png': { schema: { type: 'string', format: 'binary', description: '8-bit palette PNG: pixel value = class index, palette = legend colours' } },
              },
            },
            ...errors,
          },
        },
      },
      '/v1/classes': { get: { summary: 'the classes of an index', security, parameters: parameters(CLASSES_PARAMS), responses: { '200': { description: 'class names and synonyms' }, ...errors } } },
      '/v1/health': { get: { summary: 'model and index state, memory', responses: { '200': { description: 'ok' }, '503': errors['503'] } } },
      '/openapi.json': { get: { summary: 'this document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
