// SuS-SD: support images generated from the class names by a text-to-image service.
// Protocol (ours): POST JSON {prompt, seed, width, height} -> image bytes (PNG/JPEG).
// Generated images are cached on disk by (generator, prompt, seed, size), so an
// interrupted run resumes where it stopped.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sniffFormat } from '../core/decode.js';

export class GeneratorError extends Error {}

export interface GeneratorRequest {
  prompt: string;
  seed: number;
  width: number;
  height: number;
}

export interface Generator {
  /** Identity recorded in the manifest and the cache key (never contains secrets). */
  name: string;
  generate(request: GeneratorRequest): Promise<Uint8Array>;
}

type Fetch = typeof fetch;

async function imageResponse(response: Response, what: string): Promise<Uint8Array> {
  if (!response.ok) {
    const text = (await response.text().catch(() => '')).slice(0, 200);
    throw new GeneratorError(`${what} answered HTTP ${response.status}${text ? `: ${text}` : ''}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const format = sniffFormat(bytes);
  if (format !== 'png' && format !== 'jpeg') throw new GeneratorError(`${what} returned something that is not a PNG or JPEG image (${bytes.length} bytes)`);
  return bytes;
}

/** Any service speaking our protocol, e.g. `nameonly shapes-generator`. */
export function httpGenerator(url: string, fetchImpl: Fetch = fetch): Generator {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GeneratorError(`--generator ${url} is not a URL`);
  }
  const name = `${parsed.origin}${parsed.pathname}`;
  return {
    name,
    async generate(request) {
      let response: Response;
      try {
        response = await fetchImpl(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
      } catch (e) {
        throw new GeneratorError(`generator ${name} is not reachable: ${(e as Error).message}`);
      }
      return imageResponse(response, `generator ${name}`);
    },
  };
}

/**
 * Cloudflare Workers AI text-to-image REST API (`--generator workers-ai:<model>`),
 * account id and token from CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN.
 */
export function workersAiGenerator(model: string, env: NodeJS.ProcessEnv = process.env, fetchImpl: Fetch = fetch): Generator {
  const account = env.CLOUDFLARE_ACCOUNT_ID, token = env.CLOUDFLARE_API_TOKEN;
  if (!account || !token) throw new GeneratorError('workers-ai generator: set CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN');
  const url = `https://api.cloudflare.com/client/v4/accounts/${encodeURIComponent(account)}/ai/run/${model}`;
  return {
    name: `workers-ai:${model}`,
    async generate({ prompt, seed, width, height }) {
      let response: Response;
      try {
        response = await fetchImpl(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ prompt, seed, width, height }),
        });
      } catch (e) {
        throw new GeneratorError(`Workers AI is not reachable: ${(e as Error).message}`);
      }
      return imageResponse(response, `Workers AI ${model}`);
    },
  };
}

export function generatorFor(spec: string): Generator {
  return spec.startsWith('workers-ai:') ? workersAiGenerator(spec.slice('workers-ai:'.length)) : httpGenerator(spec);
}

/** Seed of the k-th image of a prompt: a stable hash, so re-runs ask for the same images. */
export function seedFor(prompt: string, k: number): number {
  return createHash('sha256').update(`${prompt}\u0000${k}`).digest().readUInt32LE(0) & 0x7fffffff;
}

export class GenerationCache {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private path(generator: string, r: GeneratorRequest): string {
    return join(this.dir, createHash('sha256').update(JSON.stringify([generator, r.prompt, r.seed, r.width, r.height])).digest('hex') + '.img');
  }

  async get(generator: Generator, request: GeneratorRequest): Promise<{ bytes: Uint8Array; cached: boolean }> {
    const path = this.path(generator.name, request);
    if (existsSync(path)) return { bytes: readFileSync(path), cached: true };
    const bytes = await generator.generate(request);
    writeFileSync(`${path}.tmp`, bytes);
    renameSync(`${path}.tmp`, path);
    return { bytes, cached: false };
  }
}
