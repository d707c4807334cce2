// `nameonly publish`: uploads a model and an index to R2 under a versioned prefix: blobs
// first, the manifest after them, the index's `current` pointer last, so a Worker never
// sees a mix of two versions.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DATA_FILE, parseIndexManifest } from '../core/index-format.js';
import { parseModelInfo } from '../core/model-info.js';
import { currentKey, currentPointer, indexKey, modelKey } from '../core/storage-layout.js';

export interface PublishTarget {
  put(key: string, bytes: Uint8Array, contentType: string): Promise<void>;
}

const TEMP_PREFIX = 'nameonly-publish-';
const liveTempDirs = new Set<string>();

/** Removes the temporary folders of publishes whose process is gone (a SIGKILL leaves them). */
export function sweepStalePublishDirs(root = tmpdir()): string[] {
  const removed: string[] = [];
  for (const entry of readdirSync(root)) {
    const pid = Number(/^nameonly-publish-(\d+)-/.exec(entry)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue; // alive, another user's
      rmSync(join(root, entry), { recursive: true, force: true });
      removed.push(entry);
    }
  }
  return removed;
}

/**
 * A temporary folder for one upload, named by this process's pid, removed however the
 * process ends: normally, on an error, on SIGINT/SIGTERM/SIGHUP (then the signal goes on), or
 * by the next publish's sweep after a SIGKILL.
 */
export function publishTempDir(): string {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
  liveTempDirs.add(dir);
  return dir;
}

let cleanupInstalled = false;
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const clean = () => {
    for (const dir of liveTempDirs) rmSync(dir, { recursive: true, force: true });
    liveTempDirs.clear();
  };
  process.once('exit', clean);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      clean();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal); // the signal goes on as if we were not here
    };
    process.on(signal, onSignal);
  }
}

function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveTempDirs.delete(dir);
}

/** `wrangler r2 object put`, remote or `--local` (wrangler dev's local R2). */
const PROJECT_ROOT = new URL('../', import.meta.url).pathname;

export function wranglerTarget(bucket: string, local: boolean, persistTo?: string): PublishTarget {
  const wrangler = join(PROJECT_ROOT, 'node_modules/.bin/wrangler');
  sweepStalePublishDirs();
  return {
    async put(key, bytes, contentType) {
      const dir = publishTempDir();
      try {
        const file = join(dir, 'object');
        writeFileSync(file, bytes);
        const args = ['r2', 'object', 'put', `${bucket}/${key}`, '--file', file, '--content-type', contentType, local ? '--local' : '--remote'];
        if (persistTo) args.push('--persist-to', resolve(persistTo));
        // From the project's folder, whatever the caller's: --local then writes the store that
        // the project's `wrangler dev` reads (.wrangler/state), not one beside the caller.
        execFileSync(wrangler, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
      } catch (e) {
        const plain = String((e as { stderr?: Buffer }).stderr ?? '').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
        const stderr = plain.split('\n').filter((l) => /error/i.test(l)).slice(0, 3).join(' ');
        throw new Error(`wrangler could not upload ${key}${stderr ? `: ${stderr}` : ''}`);
      } finally {
        removeTempDir(dir);
      }
    },
  };
}

export async function publish(indexDir: string, modelDir: string, target: PublishTarget, log: (l: string) => void = () => {}): Promise<{ name: string; version: string }> {
  const manifestBytes = readFileSync(join(indexDir, 'manifest.json'));
  const data = readFileSync(join(indexDir, DATA_FILE));
  const manifest = parseIndexManifest(JSON.parse(manifestBytes.toString('utf8')), data.length);
  const modelJson = readFileSync(join(modelDir, 'model.json'));
  const modelSha = createHash('sha256').update(modelJson).digest('hex');
  if (modelSha !== manifest.model.modelJsonSha256) throw new Error(`index ${manifest.name} was built for model ${manifest.model.name}, not for ${modelDir}`);
  const info = parseModelInfo(JSON.parse(modelJson.toString('utf8')));
  const { name, version } = manifest;
  if (!info.workerMemory.fits) {
    const mb = (n: number) => `${Math.round(n / 2 ** 20)} MB`;
    throw new Error(`model ${info.name} does not fit a Worker: it needs about ${mb(info.workerMemory.totalBytes)} of ${mb(info.workerMemory.limitBytes)} (image tower ${mb(info.workerMemory.imageTowerBytes)}); use a smaller image tower`);
  }
  // The image Worker reads only the image tower of the model's runtime; the text Worker the
  // text tower on the engine and the tokenizer (labels given with a request).
  const tower = info.imageRuntime === 'engine' ? info.files.engineWeights : info.files.imageEncoderQuantized;
  const text = info.files.textEngineWeights ? [info.files.textEngineWeights, info.tokenizer.vocab, info.tokenizer.merges] : [];
  const steps: [string, Uint8Array, string][] = [
    ...[tower, ...text].map((file): [string, Uint8Array, string] => [modelKey(modelSha, file), readFileSync(join(modelDir, file)), 'application/octet-stream']),
    [modelKey(modelSha, 'model.json'), modelJson, 'application/json'],
    [indexKey(name, version, DATA_FILE), data, 'application/octet-stream'],
    [indexKey(name, version, 'manifest.json'), manifestBytes, 'application/json'],
    [currentKey(name), new TextEncoder().encode(currentPointer(version, createHash('sha256').update(manifestBytes).digest('hex'))), 'text/plain'],
  ];
  for (const [key, bytes, type] of steps) {
    log(`  put ${key} (${bytes.length} bytes)`);
    await target.put(key, bytes, type);
  }
  return { name, version };
}
