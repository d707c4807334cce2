// The engine in Node (indexer, CLI, tests, benchmarks): modules from engine/build, the
// blob streamed from the model folder and checked against its sha256 in model.json.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelInfo } from '../core/model-info.js';
import { HEADER_BYTES } from './blob-format.js';
import { EngineError, engineErrorReason, VitEngine, type EngineModules, type KernelChoice } from './engine.js';

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

export async function openEngine(modelDir: string, info: ModelInfo, kernel: KernelChoice = kernelFromEnv()): Promise<VitEngine> {
  const file = join(modelDir, info.files.engineWeights);
  const hash = createHash('sha256');
  const expected = info.hashes[info.files.engineWeights]?.sha256;
  async function* chunks() {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      yield chunk as Uint8Array;
    }
    if (hash.digest('hex') !== expected) throw new EngineError(`engine weights of model ${info.name} do not match their sha256 in model.json`);
  }
  let bytes: number;
  try {
    bytes = statSync(file).size;
  } catch {
    throw new EngineError(`engine weights of model ${info.name} are missing (${file}); convert the checkpoint again`);
  }
  return VitEngine.load(await engineModules(), info, { bytes, chunks: chunks() }, { kernel });
}

/**
 * The engine's exact memory for a blob: reserves weights + run state in a fresh instance of
 * each module this runtime compiles and reads the memory size (the larger of the two).
 */
export function measureEngineMemory(blob: Uint8Array): { stateBytes: number; memoryBytes: number } {
  let stateBytes = 0, memoryBytes = 0;
  for (const file of Object.values(ENGINE_MODULE_FILES)) {
    const bytes = readFileSync(join(BUILD, file));
    if (!WebAssembly.validate(bytes)) continue;
    const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as {
      memory: WebAssembly.Memory; engine_header(): number; engine_reserve(n: number): number; engine_error(): number; engine_state_bytes(): number;
    };
    new Uint8Array(ex.memory.buffer).set(blob.subarray(0, HEADER_BYTES), ex.engine_header());
    if (ex.engine_reserve(blob.length) === 0) throw new EngineError(`the engine refuses this image tower: ${engineErrorReason(ex.engine_error())}`);
    stateBytes = ex.engine_state_bytes();
    memoryBytes = Math.max(memoryBytes, ex.memory.buffer.byteLength);
  }
  return { stateBytes, memoryBytes };
}
