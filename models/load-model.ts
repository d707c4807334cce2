// Opens a converted model folder in Node (indexer, CLI, tests, benchmarks).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageEncoder, TextEncoder, type ImageTower, type OrtModule } from '../core/encoders.js';
import { openEngine } from '../engine/node.js';
import { parseModelInfo, type ModelInfo } from '../core/model-info.js';
import { tokenizerFromFiles, type ClipTokenizer } from '../core/tokenizer.js';

/** onnxruntime-node, onnxruntime-web (WASM), or the int8 engine (image tower only). */
export type Runtime = 'node' | 'wasm' | 'engine';

export function readModelInfo(modelDir: string): ModelInfo {
  let raw: string;
  try {
    raw = readFileSync(join(modelDir, 'model.json'), 'utf8');
  } catch {
    const hint = existsSync(join(modelDir, 'config.json')) ? `it looks like a checkpoint: convert it into a separate folder first, e.g. \`nameonly convert ${modelDir} --out ${modelDir.replace(/\/+$/, '')}-nameonly\`` : 'run `nameonly convert <checkpoint> --out <model-dir>` and pass that folder';
    throw new Error(`${modelDir} is not a converted model folder (no model.json); ${hint}`);
  }
  return parseModelInfo(JSON.parse(raw));
}

/** The sha256 of a model folder's model.json: how indexes, R2 keys and caches name the model. */
export function modelJsonSha256(modelDir: string): string {
  return createHash('sha256').update(readFileSync(join(modelDir, 'model.json'))).digest('hex');
}

/**
 * onnxruntime-node, with its telemetry off: since 1.30 its Linux build starts Microsoft's 1DS
 * telemetry with each session, which leaves an empty /tmp/mat-debug-<pid>.log behind.
 */
export async function onnxruntimeNode(): Promise<OrtModule> {
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  return (await import('onnxruntime-node')) as unknown as OrtModule;
}

export async function ortFor(runtime: Exclude<Runtime, 'engine'>): Promise<OrtModule> {
  if (runtime === 'node') return onnxruntimeNode();
  const ort = await import('onnxruntime-web/wasm');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  return ort as unknown as OrtModule;
}

export async function openImageEncoder(modelDir: string, opts: { runtime?: Runtime; quantized?: boolean } = {}): Promise<ImageTower> {
  const info = readModelInfo(modelDir);
  if (opts.runtime === 'engine') return openEngine(modelDir, info);
  const file = opts.quantized ? info.files.imageEncoderQuantized : info.files.imageEncoder;
  return ImageEncoder.create(await ortFor(opts.runtime ?? 'node'), readFileSync(join(modelDir, file)), info);
}

export async function openTextEncoder(modelDir: string, runtime: Exclude<Runtime, 'engine'> = 'node'): Promise<TextEncoder> {
  const info = readModelInfo(modelDir);
  return TextEncoder.create(await ortFor(runtime), readFileSync(join(modelDir, info.files.textEncoder)), info);
}

export function openTokenizer(modelDir: string): ClipTokenizer {
  const info = readModelInfo(modelDir);
  return tokenizerFromFiles(readFileSync(join(modelDir, info.tokenizer.vocab), 'utf8'), readFileSync(join(modelDir, info.tokenizer.merges), 'utf8'));
}
