// HTTP plumbing of the Worker: one error shape, auth, bounded body reading.

export type ErrorCode =
  | 'bad_request'
  | 'undecodable_image'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'invalid_parameter'
  | 'unavailable'
  | 'busy'
  | 'deadline_exceeded'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  undecodable_image: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  invalid_parameter: 422,
  unavailable: 503,
  busy: 503,
  deadline_exceeded: 503,
  internal: 500,
};

export class HttpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
  get status(): number {
    return STATUS[this.code];
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } });
}

export function errorResponse(e: HttpError): Response {
  return json({ error: { code: e.code, message: e.message } }, e.status, e.headers);
}

/**
 * A Worker's fetch handler: the router's answer, every error as `{ error: { code, message } }`.
 * Never a stack trace (nor a secret) in a response; the log line has the message only.
 */
export function routerFetch<E>(router: { fetch(request: Request, env: E): Promise<unknown> }, doing: string, worker: string) {
  return async (request: Request, env: E): Promise<Response> => {
    try {
      return (await router.fetch(request, env)) as Response;
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      console.error(`internal error: ${(e as Error).message}`);
      return errorResponse(new HttpError('internal', `internal error while ${doing}; see the ${worker} logs`));
    }
  };
}

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

/** Constant-time comparison of the presented key against every configured key (hashes, so lengths do not leak). */
export async function checkAuth(request: Request, apiKeys: string | undefined, isPublic: boolean): Promise<void> {
  if (isPublic) return;
  const header = request.headers.get('authorization') ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match) throw new HttpError('unauthorized', 'missing "Authorization: Bearer <key>"', { 'www-authenticate': 'Bearer' });
  const keys = (apiKeys ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  if (keys.length === 0) throw new HttpError('unavailable', 'no API keys are configured (wrangler secret put API_KEYS), and PUBLIC is not "true"');
  const presented = await digest(match[1]!.trim());
  let ok = 0;
  for (const key of keys) {
    const expected = await digest(key);
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ presented[i]!;
    ok |= diff === 0 ? 1 : 0;
  }
  if (!ok) throw new HttpError('forbidden', 'the API key is not valid');
}

/** Reads a request body, refusing more than `limit` bytes before reading it all. */
export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const header = request.headers.get('content-length');
  if (header !== null && !/^\s*\d+\s*$/.test(header)) throw new HttpError('bad_request', `Content-Length "${header.slice(0, 40)}" is not a byte count`);
  const declared = header === null ? NaN : Number(header);
  if (declared > limit) throw new HttpError('payload_too_large', `the body is ${declared} bytes; the limit is ${limit}`);
  if (!request.body) throw new HttpError('bad_request', 'the request has no body: send the image bytes or multipart/form-data with an "image" field');
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let part: ReadableStreamReadResult<Uint8Array>;
    try {
      part = await reader.read();
    } catch {
      throw new HttpError('bad_request', 'the upload broke off before the body was complete');
    }
    const { done, value } = part;
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new HttpError('payload_too_large', `the body is over the limit of ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) (out.set(c, at), (at += c.byteLength));
  return out;
}

/** A JSON body of at most `limit` bytes. */
export async function readJson(request: Request, limit: number): Promise<unknown> {
  const bytes = await readBody(request, limit);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new HttpError('bad_request', 'the body is not JSON');
  }
}

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'];

/** What a request brings beside its image: labels (and their templates) given with it. */
export interface RequestFields {
  labels?: unknown;
  templates?: unknown;
}

/** A multipart text field: a JSON list, or (labels) a comma-separated list. */
function listField(value: unknown, name: string, commas: boolean): unknown {
  if (value === null) return undefined;
  if (typeof value !== 'string') throw new HttpError('bad_request', `the "${name}" field must be text`);
  if (value.trim().startsWith('[') || !commas) {
    try {
      return JSON.parse(value);
    } catch {
      throw new HttpError('bad_request', `the "${name}" field is not a JSON list`);
    }
  }
  return value.split(',').map((l) => l.trim());
}

function base64Bytes(text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text.replace(/^data:[^,]*,/, '')), (c) => c.charCodeAt(0));
  } catch {
    throw new HttpError('bad_request', 'the "image" field is not base64');
  }
}

/**
 * The image bytes of a request and its fields: a raw image body; multipart/form-data with an
 * "image" file and optional "labels" and "templates" fields; or a JSON body
 * {"image": "<base64>", "labels": [...], "templates": [...]}.
 */
export async function readImageRequest(request: Request, limit: number): Promise<{ bytes: Uint8Array; fields: RequestFields }> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'multipart/form-data') {
    const body = await readBody(request, limit);
    let form: FormData;
    try {
      form = await new Response(body as BodyInit, { headers: { 'content-type': request.headers.get('content-type')! } }).formData();
    } catch {
      throw new HttpError('bad_request', 'malformed multipart/form-data body');
    }
    const field = form.get('image') as unknown;
    if (!(field instanceof Blob)) throw new HttpError('bad_request', 'multipart/form-data needs a file field named "image"');
    return { bytes: new Uint8Array(await field.arrayBuffer()), fields: { labels: listField(form.get('labels'), 'labels', true), templates: listField(form.get('templates'), 'templates', false) } };
  }
  if (type === 'application/json') {
    const body = (await readJson(request, limit)) as { image?: unknown; labels?: unknown; templates?: unknown } | null;
    if (!body || typeof body !== 'object' || typeof body.image !== 'string') throw new HttpError('bad_request', 'a JSON body needs "image": the image as base64');
    return { bytes: base64Bytes(body.image), fields: { labels: body.labels, templates: body.templates } };
  }
  if (type && !IMAGE_TYPES.includes(type)) throw new HttpError('unsupported_media_type', `content-type ${type} is not supported: send image/jpeg, image/png, multipart/form-data or application/json`);
  return { bytes: await readBody(request, limit), fields: {} };
}
