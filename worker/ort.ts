// onnxruntime-web inside workerd. Workers forbid compiling WebAssembly from bytes at
// run time, so wrangler precompiles ORT's .wasm (imported below as a WebAssembly.Module)
// and the call ORT makes with bytes is handed that module instead. A tiny non-empty
// placeholder wasmBinary stops ORT from fetching the file; one thread, no proxy worker.
import * as ort from 'onnxruntime-web/wasm';
import ortWasmModule from '../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm';
import type { OrtModule } from '../core/encoders.js';

let memory: WebAssembly.Memory | undefined;
let ready = false;

export function workerOrt(): OrtModule {
  if (!ready) {
    const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (m: WebAssembly.Module, i?: WebAssembly.Imports) => Promise<WebAssembly.Instance>;
    (WebAssembly as { instantiate: unknown }).instantiate = async (source: unknown, imports?: WebAssembly.Imports) => {
      const module = source instanceof WebAssembly.Module ? source : (ortWasmModule as WebAssembly.Module);
      const instance = await instantiate(module, imports);
      // The heap is either exported or (threaded builds) passed in through the imports.
      const candidates = [...Object.values(instance.exports), ...Object.values(imports ?? {}).flatMap((m) => Object.values(m as object))];
      memory ??= candidates.find((e): e is WebAssembly.Memory => e instanceof WebAssembly.Memory);
      return source instanceof WebAssembly.Module ? instance : { instance, module };
    };
    ort.env.wasm.wasmBinary = new Uint8Array([0, 97, 115, 109]);
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ready = true;
  }
  return ort as unknown as OrtModule;
}

/** Bytes of the WASM heap (model, tensors, arena), once ORT has started. */
export function wasmHeapBytes(): number {
  return memory?.buffer.byteLength ?? 0;
}
