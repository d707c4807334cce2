// The engine's two modules, precompiled by wrangler (CompiledWasm rule in wrangler.toml):
// Workers cannot compile WebAssembly from bytes at run time.
import type { EngineModules } from '../engine/engine.js';
import relaxed from '../engine/build/clip-vit-relaxed.wasm';
import simd128 from '../engine/build/clip-vit-simd128.wasm';

export const engineModules: EngineModules = { relaxed, simd128 };
