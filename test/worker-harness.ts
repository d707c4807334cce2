// Runs the bundled Worker in the real Workers runtime (workerd, through Miniflare).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { readdirSync, readFileSync } from 'node:fs';
import { prepareSupport } from '../core/scoring/tipx.js';
import { publish } from '../indexer/publish.js';
import { writeIndex } from '../indexer/write-index.js';
import { modelJsonSha256, readModelInfo } from '../models/load-model.js';
import { randomUnitRows, tempDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const bundles = new Map<string, string>();

/** `wrangler deploy --dry-run --outdir`: the exact bundle a deploy would upload (of the image Worker, or with `config` another). */
export function buildWorker(config = 'wrangler.toml'): string {
  let bundle = bundles.get(config);
  if (!bundle) {
    bundle = tempDir('worker-bundle');
    execFileSync(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '-c', config, '--outdir', bundle], { cwd: ROOT, stdio: 'pipe', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
    bundles.set(config, bundle);
  }
  return bundle;
}

/** A bundle's modules, listed explicitly: Miniflare's module walker refuses ORT's dynamic import(). */
function modulesOf(dir: string) {
  return {
    modulesRoot: dir,
    modules: [
      { type: 'ESModule' as const, path: join(dir, 'index.js') },
      ...readdirSync(dir)
        .filter((f) => f.endsWith('.wasm'))
        .map((f) => ({ type: 'CompiledWasm' as const, path: join(dir, f) })),
    ],
  };
}

export interface WorkerHandle {
  mf: Miniflare;
  /** Where it listens (with listen = true). */
  url: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  publish(indexDir: string, modelDir: string): Promise<{ name: string; version: string }>;
  dispose(): Promise<void>;
}

/**
 * The image Worker in workerd; with `text`, the text Worker beside it (wrangler.text.toml's
 * bundle) behind its TEXT service binding, both on one R2 bucket, as `npm run dev` runs them.
 * `text: 'unbound'` leaves the binding out; 'down' binds a Worker that always fails.
 */
export async function startWorker(vars: Record<string, string> = {}, listen = false, images = false, r2Persist?: string, text?: 'bound' | 'unbound' | 'down'): Promise<WorkerHandle> {
  const image = {
    name: 'nameonly',
    ...modulesOf(buildWorker()),
    compatibilityDate: '2026-04-01',
    r2Buckets: { STORE: 'nameonly' },
    ...(images ? { images: { binding: 'IMAGES' } } : {}),
    bindings: { DEFAULT_INDEX: 'tiny', PUBLIC: 'true', MAX_BODY_BYTES: String(10 * 2 ** 20), MAX_PIXELS: '16000000', MAX_DECODE_MB: '48', RELOAD_CHECK_SECONDS: '0', ...vars },
    ...(text === 'bound' || text === 'down' ? { serviceBindings: { TEXT: 'nameonly-text' } } : {}),
  };
  const textWorker =
    text === 'bound'
      ? { name: 'nameonly-text', ...modulesOf(buildWorker('wrangler.text.toml')), compatibilityDate: '2026-04-01', r2Buckets: { STORE: 'nameonly' } }
      : { name: 'nameonly-text', modules: true, script: 'export default { fetch() { throw new Error("text Worker crashed"); } }' };
  const mf = new Miniflare({
    ...(listen ? { host: '127.0.0.1', port: 0 } : {}),
    ...(r2Persist ? { r2Persist } : {}),
    workers: text === 'bound' || text === 'down' ? [image, textWorker] : [image],
  });
  await mf.ready;
  const bucket = await mf.getR2Bucket('STORE');
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return {
    mf,
    url,
    fetch: async (path, init) => (await mf.dispatchFetch(`http://localhost${path}`, init as never)) as unknown as Response,
    publish: (indexDir, modelDir) => publish(indexDir, modelDir, { put: async (key, bytes) => void (await bucket.put(key, new Uint8Array(bytes).buffer)) }),
    dispose: () => mf.dispose(),
  };
}

/** A synthetic index of the given size (latency does not depend on what the vectors mean). */
export function syntheticIndex(modelDir: string, classes: number, shots: number): string {
  const info = readModelInfo(modelDir);
  const D = info.embedDim, M = classes * shots;
  const W = randomUnitRows(classes, D, 1);
  const labels = Int32Array.from({ length: M }, (_, i) => i % classes);
  const support = prepareSupport(randomUnitRows(M, D, 2), labels, W);
  const out = join(tempDir('bench-index'), 'bench');
  const params = { beta2: 1.12, beta3: 0.02, alpha: 1, beta: 5.5, gamma: 0.3 };
  writeIndex(
    out,
    {
      model: { name: info.name, modelJsonSha256: modelJsonSha256(modelDir), embedDim: D },
      classes: Array.from({ length: classes }, (_, c) => ({ name: `class ${c}`, synonyms: [] })),
      prompts: { templates: ['a photo of a {}.'], descriptions: 0 },
      counts: { classes, queries: classes, support: M },
      support: { sources: Array.from(labels, (label) => ({ kind: 'shots' as const, path: 'synthetic', sha256: '0'.repeat(64), label })), perClass: new Array(classes).fill(shots), requestedPerClass: shots },
      hyperparameters: { source: 'defaults', params: { calip: { beta2: 1.12, beta3: 0.02 }, tipx: { alpha: 1, beta: 5.5, gamma: 0.3 }, combined: params } },
    },
    { textClassifier: W, queries: W, queryClass: Int32Array.from({ length: classes }, (_, c) => c), support: { features: support.features, labels, logNorm: support.logNorm } },
  );
  return out;
}


/** Resident memory of the workerd processes this test process started (bytes), from /proc. */
export function workerdRss(): number {
  const list = readdirSync, read = readFileSync;
  let total = 0;
  for (const pid of list('/proc').filter((p: string) => /^\d+$/.test(p))) {
    try {
      const stat = read(`/proc/${pid}/stat`, 'utf8') as string;
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid || !stat.includes('(workerd)')) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(read(`/proc/${pid}/status`, 'utf8') as string);
      if (rss) total += Number(rss[1]) * 1024;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}
