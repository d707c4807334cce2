// The engine in Node (indexer, CLI, tests, benchmarks): modules from engine/build, the
// blob streamed from the model folder and checked against its sha256 in model.json.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelInfo } from '../core/model-info.js';
import { HEADER_BYTES } from './blob-format.js';
import { EngineError, engineErrorReason, TextEngine, VitEngine, type BlobSource, type EngineModules, type KernelChoice } from './engine.js';

const BUILD = new URL('./build/', import.meta.url).pathname;
export const ENGINE_MODULE_FILES = { relaxed: 'clip-vit-relaxed.wasm', simd128: 'clip-vit-simd128.wasm' } as const;

let modules: Promise<EngineModules> | undefined;

/** Both compiled modules; the relaxed one only where this runtime validates it. */
export function engineModules(): Promise<EngineModules> {
  modules ??= (async () => {
    const relaxedBytes = readFileSync(join(BUILD, ENGINE_MODULE_FILES.relaxed));
    return {
      relaxed: WebAssembly.validate(relaxedBytes) ? await WebAssembly.compile(relaxedBytes) : undefined,
      simd128: await WebAssembly.compile(readFileSync(join(BUILD, ENGINE_MODULE_FILES.simd128))),
    };
  })();
  return modules;
}

/** NAMEONLY_ENGINE_KERNEL=relaxed|simd128 pins the kernel (tests, benchmarks). */
export function kernelFromEnv(): KernelChoice {
  const k = process.env.NAMEONLY_ENGINE_KERNEL;
  if (k === undefined || k === '' || k === 'auto') return 'auto';
  if (k === 'relaxed' || k === 'simd128') return k;
  throw new EngineError(`NAMEONLY_ENGINE_KERNEL must be relaxed, simd128 or auto, not "${k}"`);
}

/** A blob of the model folder, streamed and checked against its sha256 in model.json at the end. */
function blobFile(modelDir: string, info: ModelInfo, file: string, what: string): BlobSource {
  const path = join(modelDir, file);
  const hash = createHash('sha256');
  const expected = info.hashes[file]?.sha256;
  async function* chunks() {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      yield chunk as Uint8Array;
    }
    if (hash.digest('hex') !== expected) throw new EngineError(`${what} of model ${info.name} do not match their sha256 in model.json`);
  }
  try {
    return { bytes: statSync(path).size, chunks: chunks() };
  } catch {
    throw new EngineError(`${what} of model ${info.name} are missing (${path}); convert the checkpoint again`);
  }
}

export async function openEngine(modelDir: string, info: ModelInfo, kernel: KernelChoice = kernelFromEnv()): Promise<VitEngine> {
  return VitEngine.load(await engineModules(), info, blobFile(modelDir, info, info.files.engineWeights, 'engine weights'), { kernel });
}

export async function openTextEngine(modelDir: string, info: ModelInfo, kernel: KernelChoice = kernelFromEnv()): Promise<TextEngine> {
  const file = info.files.textEngineWeights;
  if (!file) throw new EngineError(`model ${info.name} has no text engine blob (converted by an older version): convert the checkpoint again`);
  return TextEngine.load(await engineModules(), info, blobFile(modelDir, info, file, 'text engine weights'), { kernel });
}

/**
 * The engine's exact memory for a tower's blob: reserves weights + run state in a fresh instance
 * of each module this runtime compiles and reads the memory size (the larger of the two).
 */
export function measureEngineMemory(blob: Uint8Array, tower: 'engine' | 'text' = 'engine'): { stateBytes: number; memoryBytes: number } {
  let stateBytes = 0, memoryBytes = 0;
  for (const file of Object.values(ENGINE_MODULE_FILES)) {
    const bytes = readFileSync(join(BUILD, file));
    if (!WebAssembly.validate(bytes)) continue;
    const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Record<string, () => number> & { memory: WebAssembly.Memory } & Record<string, (n: number) => number>;
    const call = (name: string, n = 0) => ex[`${tower}_${name}`]!(n);
    new Uint8Array(ex.memory.buffer).set(blob.subarray(0, HEADER_BYTES), call('header'));
    if (call('reserve', blob.length) === 0) throw new EngineError(`the engine refuses this ${tower === 'text' ? 'text' : 'image'} tower: ${engineErrorReason(call('error'))}`);
    stateBytes = call('state_bytes');
    memoryBytes = Math.max(memoryBytes, ex.memory.buffer.byteLength);
  }
  return { stateBytes, memoryBytes };
}
