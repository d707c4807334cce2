// The host side of the engine (engine/clip_vit.c, clip_text.c): picks the fastest exact
// kernel, streams a tower's weight blob straight into the module's memory (no JavaScript copy
// of the whole blob), and runs the forward pass. The same code runs in Node and in workerd; each
// brings its compiled modules (engine/node.ts reads them from disk, the Worker imports them).
import type { ImageEmbeddings, ImageOutput, ImageTower } from '../core/encoders.js';
import type { Matrix } from '../core/linalg.js';
import type { ModelInfo } from '../core/model-info.js';
import type { CalipProducts } from '../core/scoring/calip-graph.js';
import type { CalipTerms } from '../core/scoring/calip.js';
import type { SupportProducts } from '../core/scoring/support-graph.js';
import { HEADER_BYTES, readHeader, readTextHeader, ENGINE_VERSION, TEXT_ENGINE_VERSION } from './blob-format.js';

export type EngineKernel = 'relaxed' | 'simd128';
export type KernelChoice = EngineKernel | 'auto';

/** A Worker's ENGINE_KERNEL var: relaxed or simd128 pins the kernel; anything else is auto. */
export function kernelChoice(value: string | undefined): KernelChoice {
  return value === 'relaxed' || value === 'simd128' ? value : 'auto';
}

export interface EngineModules {
  /** Absent where the runtime cannot compile relaxed SIMD. */
  relaxed?: WebAssembly.Module;
  simd128: WebAssembly.Module;
}

interface Exports {
  memory: WebAssembly.Memory;
  engine_header(): number;
  engine_error(): number;
  engine_reserve(bytes: number): number;
  engine_init(): number;
  engine_forward(outputs: number): number;
  engine_pixels(): number;
  engine_image_embeds(): number;
  engine_patch_embeds(): number;
  engine_csa_patch_embeds(): number;
  engine_naclip_patch_embeds(): number;
  engine_clearclip_patch_embeds(): number;
  engine_state_bytes(): number;
  engine_probe(): number;
  engine_scratch(bytes: number): number;
  engine_qmatmul(out: number, x: number, xs: number, xz: number, T: number, w: number, ws: number, b: number, wsum: number, O: number, n: number): void;
  engine_quantize_row(q: number, zero: number, x: number, n: number): number;
  engine_half_matvec2(out: number, F: number, probes: number, M: number, D: number): void;
  text_header(): number;
  text_error(): number;
  text_reserve(bytes: number): number;
  text_init(): number;
  text_forward(tokens: number): number;
  text_tokens(): number;
  text_lengths(): number;
  text_embeds(): number;
  text_max_rows(): number;
  text_state_bytes(): number;
  engine_calip_terms(clip: number, vgt: number, tav: number, f: number, Fs: number, HW: number, W: number, C: number, D: number, S: number, fsPrime: number, scratch: number): void;
}

export class EngineError extends Error {}

const REASONS: Record<number, string> = {
  1: 'not an engine weight blob',
  2: 'the blob was written for another engine version',
  3: 'the image tower has a configuration the engine does not support',
  4: 'the blob size does not match its header (truncated or altered)',
  5: 'not enough memory for weights and run state',
  6: 'the blob changed while it was loaded, or the engine was set up twice',
  7: 'a token id outside the vocabulary, or more tokens than the context holds',
};

/** Why the engine refused (engine_error's code). */
export function engineErrorReason(code: number): string {
  return REASONS[code] ?? `engine error ${code}`;
}

/** Each output: engine_forward's flag, the export that points at it, its field, its size per image. */
const OUTPUTS: Record<ImageOutput, { flag: number; at: (ex: Exports) => number; field: keyof Omit<ImageEmbeddings, 'batch'>; patches: boolean }> = {
  image_embeds: { flag: 1, at: (ex) => ex.engine_image_embeds(), field: 'imageEmbeds', patches: false },
  patch_embeds: { flag: 2, at: (ex) => ex.engine_patch_embeds(), field: 'patchEmbeds', patches: true },
  csa_patch_embeds: { flag: 4, at: (ex) => ex.engine_csa_patch_embeds(), field: 'csaPatchEmbeds', patches: true },
  naclip_patch_embeds: { flag: 8, at: (ex) => ex.engine_naclip_patch_embeds(), field: 'naclipPatchEmbeds', patches: true },
  clearclip_patch_embeds: { flag: 16, at: (ex) => ex.engine_clearclip_patch_embeds(), field: 'clearclipPatchEmbeds', patches: true },
};

/** An instance of one of the two modules, with its kernel. */
export class EngineInstance {
  private constructor(
    readonly exports: Exports,
    readonly kernel: EngineKernel,
  ) {}

  /**
   * `auto`: the relaxed-SIMD module when this runtime compiles it and its start-up probe
   * finds the dot product exact on this CPU; the plain SIMD128 one otherwise.
   */
  static async create(modules: EngineModules, choice: KernelChoice = 'auto'): Promise<EngineInstance> {
    if (choice !== 'simd128' && modules.relaxed) {
      const relaxed = (await WebAssembly.instantiate(modules.relaxed, {})).exports as unknown as Exports;
      if (relaxed.engine_probe() === 1) return new EngineInstance(relaxed, 'relaxed');
      if (choice === 'relaxed') throw new EngineError('the relaxed-SIMD kernel is not exact on this CPU (start-up probe failed)');
    } else if (choice === 'relaxed') {
      throw new EngineError('this runtime cannot run the relaxed-SIMD kernel');
    }
    return new EngineInstance((await WebAssembly.instantiate(modules.simd128, {})).exports as unknown as Exports, 'simd128');
  }

  get memoryBytes(): number {
    return this.exports.memory.buffer.byteLength;
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.exports.memory.buffer);
  }
  floats(pointer: number, length: number): Float32Array {
    return new Float32Array(this.exports.memory.buffer, pointer, length);
  }
  fail(what: string, code = this.exports.engine_error()): never {
    throw new EngineError(`${what}: ${engineErrorReason(code)}`);
  }
}

export interface BlobSource {
  /** Declared length (R2 object size, file size). */
  bytes: number;
  chunks: AsyncIterable<Uint8Array>;
}

/**
 * Copies a stream into memory[at + from, at + length), refusing a byte more or fewer. The
 * memory must not grow meanwhile (its buffer would move).
 */
async function copyInto(memory: Uint8Array, at: number, length: number, chunks: AsyncIterable<Uint8Array>, what: string, from = 0): Promise<void> {
  let offset = from;
  for await (const chunk of chunks) {
    if (offset + chunk.length > length) throw new EngineError(`${what}: longer than its declared ${length} bytes`);
    memory.set(chunk, at + offset);
    offset += chunk.length;
  }
  if (offset !== length) throw new EngineError(`${what}: truncated (${offset} of ${length} bytes)`);
}

/** The rest of a stream whose start was read already: `first`, then what the iterator still has. */
async function* resume(first: Uint8Array | undefined, iterator: AsyncIterator<Uint8Array>): AsyncIterable<Uint8Array> {
  if (first) yield first;
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value;
}

export async function* chunksOf(bytes: Uint8Array, chunk = 1 << 20): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
}

/** A tower's set-up calls: clip_vit.c's engine_* or clip_text.c's text_*. */
interface TowerCalls {
  header(): number;
  reserve(bytes: number): number;
  init(): number;
  error(): number;
}

/**
 * Streams a tower's blob into the module's memory: the header first (`check` refuses a blob for
 * another model), one grow to the final size, then every chunk copied in place. A source that
 * checks a hash throws at its end, before the weights are used.
 */
async function loadTower(engine: EngineInstance, calls: TowerCalls, source: BlobSource, what: string, check: (head: Uint8Array) => void): Promise<void> {
  const iterator = source.chunks[Symbol.asyncIterator]();
  // The header, which may span chunks.
  const head = new Uint8Array(HEADER_BYTES);
  let have = 0;
  let rest: Uint8Array | undefined;
  while (have < HEADER_BYTES) {
    const { value, done } = await iterator.next();
    if (done) throw new EngineError(`${what}: truncated (${have} bytes, not even a header)`);
    const n = Math.min(value.length, HEADER_BYTES - have);
    head.set(value.subarray(0, n), have);
    have += n;
    if (n < value.length) rest = value.subarray(n);
  }
  check(head);
  engine.bytes().set(head, calls.header());
  const at = calls.reserve(source.bytes);
  if (at === 0) engine.fail(what, calls.error());
  // The memory has grown once, to its final size: its buffer no longer moves.
  engine.bytes().set(head, at);
  await copyInto(engine.bytes(), at, source.bytes, resume(rest, iterator), what, HEADER_BYTES);
  if (calls.init() !== 0) engine.fail(what, calls.error());
}

/** A tower loaded into an engine instance of its own. */
abstract class EngineTower {
  protected constructor(
    protected readonly engine: EngineInstance,
    readonly info: ModelInfo,
  ) {}

  get kernel(): EngineKernel {
    return this.engine.kernel;
  }
  /** The module's whole linear memory: weights + run state + stack. */
  get memoryBytes(): number {
    return this.engine.memoryBytes;
  }
}

/** The image tower on the engine: the same interface and outputs as the ONNX encoder. */
export class VitEngine extends EngineTower implements ImageTower {

  static async load(modules: EngineModules, info: ModelInfo, source: BlobSource, options: { kernel?: KernelChoice } = {}): Promise<VitEngine> {
    const engine = await EngineInstance.create(modules, options.kernel);
    const what = `engine weights of model ${info.name}`;
    const ex = engine.exports;
    const calls = { header: () => ex.engine_header(), reserve: (n: number) => ex.engine_reserve(n), init: () => ex.engine_init(), error: () => ex.engine_error() };
    await loadTower(engine, calls, source, what, (head) => {
      const header = readHeader(head);
      if (!header) throw new EngineError(`${what}: not an engine weight blob`);
      if (header.version !== ENGINE_VERSION) throw new EngineError(`${what}: blob version ${header.version}, this engine reads ${ENGINE_VERSION}; convert the model again`);
      const v = info.engine;
      if (header.imageSize !== info.imageSize || header.patchSize !== info.patchSize || header.embedDim !== info.embedDim || (v && (header.dim !== v.dim || header.layers !== v.layers))) {
        throw new EngineError(`${what}: the blob is for another model (${header.layers}x${header.dim}, patch ${header.patchSize} @ ${header.imageSize}px, embed ${header.embedDim})`);
      }
    });
    return new VitEngine(engine, info);
  }

  /** pixels: [B,3,S,S] preprocessed; one image at a time through the engine. */
  async encode(pixels: Float32Array, outputs: ImageOutput[] = ['image_embeds', 'patch_embeds', 'csa_patch_embeds']): Promise<ImageEmbeddings> {
    const { imageSize: S, embedDim: E, grid } = this.info;
    const size = 3 * S * S, N = grid * grid;
    const batch = pixels.length / size;
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`pixel buffer of ${pixels.length} floats is not a whole number of ${S}x${S} RGB images`);
    const ex = this.engine.exports;
    const wanted = [...new Set(outputs)].map((o) => OUTPUTS[o]);
    const flags = wanted.reduce((f, o) => f | o.flag, 0);
    const result: ImageEmbeddings = { batch };
    for (const o of wanted) result[o.field] = new Float32Array(batch * (o.patches ? N * E : E));
    for (let b = 0; b < batch; b++) {
      this.engine.floats(ex.engine_pixels(), size).set(pixels.subarray(b * size, (b + 1) * size));
      if (ex.engine_forward(flags) !== 0) this.engine.fail('engine forward pass');
      for (const o of wanted) {
        const n = o.patches ? N * E : E;
        result[o.field]!.set(this.engine.floats(o.at(ex), n), b * n);
      }
    }
    return result;
  }

  async release(): Promise<void> {
    // A WebAssembly memory never shrinks; it goes with the instance once unreferenced.
  }
}

/** The text tower on the engine: each text over its tokens up to the pooled one, many texts per pass. */
export class TextEngine extends EngineTower {

  static async load(modules: EngineModules, info: ModelInfo, source: BlobSource, options: { kernel?: KernelChoice } = {}): Promise<TextEngine> {
    const engine = await EngineInstance.create(modules, options.kernel);
    const what = `text engine weights of model ${info.name}`;
    const ex = engine.exports;
    const calls = { header: () => ex.text_header(), reserve: (n: number) => ex.text_reserve(n), init: () => ex.text_init(), error: () => ex.text_error() };
    await loadTower(engine, calls, source, what, (head) => {
      const header = readTextHeader(head);
      if (!header) throw new EngineError(`${what}: not a text engine weight blob`);
      if (header.version !== TEXT_ENGINE_VERSION) throw new EngineError(`${what}: blob version ${header.version}, this engine reads ${TEXT_ENGINE_VERSION}; convert the model again`);
      const t = info.textEngine;
      if (header.embedDim !== info.embedDim || header.contextLength !== info.contextLength || (t && (header.dim !== t.dim || header.layers !== t.layers))) {
        throw new EngineError(`${what}: the blob is for another model (${header.layers}x${header.dim}, context ${header.contextLength}, embed ${header.embedDim})`);
      }
    });
    return new TextEngine(engine, info);
  }

  /** ids: the tokens up to and including the pooled one (pooledTokens) -> the text embedding [E], not normalised. */
  encode(ids: readonly number[]): Float32Array {
    return this.encodeMany([ids])[0]!;
  }

  /**
   * Many texts, packed into passes of up to text_max_rows() tokens (each text attends only within
   * itself): the same embeddings as one at a time, bit for bit, each weight row read once per pass.
   */
  encodeMany(texts: readonly (readonly number[])[]): Float32Array[] {
    const ex = this.engine.exports, { embedDim: E, contextLength } = this.info, maxRows = ex.text_max_rows();
    const out: Float32Array[] = [];
    for (let first = 0; first < texts.length; ) {
      let rows = 0, count = 0;
      while (first + count < texts.length && rows + texts[first + count]!.length <= maxRows) rows += texts[first + count++]!.length;
      const batch = texts.slice(first, first + Math.max(1, count));
      for (const ids of batch) if (ids.length < 1 || ids.length > contextLength) throw new EngineError(`text engine: ${ids.length} tokens, expected 1 to ${contextLength}`);
      const tokens = batch.flat();
      new Int32Array(ex.memory.buffer, ex.text_tokens(), tokens.length).set(tokens);
      new Int32Array(ex.memory.buffer, ex.text_lengths(), batch.length).set(batch.map((t) => t.length));
      if (ex.text_forward(batch.length) !== 0) this.engine.fail('text engine forward pass', ex.text_error());
      const embeds = this.engine.floats(ex.text_embeds(), batch.length * E);
      batch.forEach((_, i) => out.push(embeds.slice(i * E, (i + 1) * E)));
      first += batch.length;
    }
    return out;
  }
}

/**
 * An index's scoring on the engine's f32 kernels, in an instance of its own (it goes with the
 * index; the model's memory never grows): CALIP's terms with the classifier W in the
 * instance's memory (JavaScript reads W through a view, so it is held once), and TIP-X's pass
 * over the support features F kept as IEEE halves. Everything is allocated up front: the
 * memory never grows afterwards, so the views stay valid.
 */
export class EngineScoring implements CalipProducts, SupportProducts {
  private constructor(
    private readonly engine: EngineInstance,
    private readonly at: { W: number; F: number; probes: number; supportOut: number; f: number; Fs: number; S: number; fsPrime: number; scratch: number; terms: number },
    private readonly dims: { C: number; D: number; maxPatches: number; M: number },
  ) {}

  /**
   * W [C,D] float32; `maxPatches`: the most patch rows a request brings (the model's grid²);
   * `support`: F [M,D] as IEEE-half bytes, streamed in (checked by the caller's source).
   */
  static async create(modules: EngineModules, W: Matrix, maxPatches: number, support?: { rows: number; halfBytes: AsyncIterable<Uint8Array> }): Promise<EngineScoring> {
    const engine = await EngineInstance.create(modules, 'simd128');
    const ex = engine.exports;
    const { rows: C, cols: D } = W;
    const M = support?.rows ?? 0;
    const at = {
      W: ex.engine_scratch(4 * C * D), F: ex.engine_scratch(2 * M * D), probes: ex.engine_scratch(8 * D), supportOut: ex.engine_scratch(8 * M),
      f: ex.engine_scratch(4 * D), Fs: ex.engine_scratch(4 * maxPatches * D), S: ex.engine_scratch(4 * maxPatches * C), fsPrime: ex.engine_scratch(4 * maxPatches * D),
      scratch: ex.engine_scratch(4 * (3 * C + maxPatches + D)), terms: ex.engine_scratch(12 * C),
    };
    if (Object.values(at).some((p) => p === 0)) throw new EngineError(`not enough memory to score ${C} classes and ${M} support images`);
    engine.floats(at.W, C * D).set(W.data);
    if (support) await copyInto(engine.bytes(), at.F, 2 * M * D, support.halfBytes, `support features (${M}x${D} halves)`);
    return new EngineScoring(engine, at, { C, D, maxPatches, M });
  }

  get memoryBytes(): number {
    return this.engine.memoryBytes;
  }

  /** The classifier as a view of the instance's memory (no second copy). */
  get classifier(): Matrix {
    return { data: this.engine.floats(this.at.W, this.dims.C * this.dims.D), rows: this.dims.C, cols: this.dims.D };
  }

  async terms(f: Float32Array, Fs: Matrix): Promise<CalipTerms> {
    const { C, D, maxPatches } = this.dims;
    if (f.length !== D || Fs.cols !== D || Fs.rows > maxPatches) throw new EngineError(`calip: expected f [${D}] and at most ${maxPatches} patches of ${D}`);
    this.engine.floats(this.at.f, D).set(f);
    this.engine.floats(this.at.Fs, Fs.rows * D).set(Fs.data);
    const t = this.at.terms;
    this.engine.exports.engine_calip_terms(t, t + 4 * C, t + 8 * C, this.at.f, this.at.Fs, Fs.rows, this.at.W, C, D, this.at.S, this.at.fsPrime, this.at.scratch);
    const out = this.engine.floats(t, 3 * C).slice();
    return { clip: out.subarray(0, C), visualGuidedText: out.subarray(C, 2 * C), textAwareVisual: out.subarray(2 * C) };
  }

  async products(probes: Matrix): Promise<Float32Array> {
    const { D, M } = this.dims;
    if (probes.rows !== 2 || probes.cols !== D) throw new EngineError(`probes must be 2x${D}`);
    this.engine.floats(this.at.probes, 2 * D).set(probes.data);
    this.engine.exports.engine_half_matvec2(this.at.supportOut, this.at.F, this.at.probes, M, D);
    return this.engine.floats(this.at.supportOut, 2 * M).slice();
  }
}
