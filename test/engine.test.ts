// The int8 engine: its kernels against the simple path on every kernel this runtime can run,
// its forward pass against the fp32 ONNX graph, and the refusal of bad weight blobs.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ATTENTION_OUTPUT, ATTENTIONS, type ImageOutput } from '../core/encoders.js';
import { describe, expect, it } from 'vitest';
import { halfToFloat } from '../core/half.js';
import { calipTerms } from '../core/scoring/calip.js';
import { chunksOf, EngineError, EngineInstance, EngineScoring, VitEngine, type EngineKernel } from '../engine/engine.js';
import { HEADER_BYTES, readHeader, writeHeader } from '../engine/blob-format.js';
import { engineModules, openEngine, openTextEngine } from '../engine/node.js';
import { pooledTokens } from '../core/tokenizer.js';
import { openImageEncoder, openTextEncoder, openTokenizer, readModelInfo } from '../models/load-model.js';
import type { TinyVariant } from '../models/tiny-checkpoints.js';
import { cosine, maxAbsDiff, meanRowCosine, randomUnitRows, tempDir, testPixels, tinyModel } from './helpers.js';

const KERNELS: EngineKernel[] = ['simd128', 'relaxed'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Round half to even in float32, as the engine's f32.nearest. */
function rint(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

describe('engine kernels against the simple path', () => {
  it('the relaxed-SIMD module compiles here and its start-up probe finds it exact (VNNI or the pmaddubsw fallback)', async () => {
    const modules = await engineModules();
    expect(modules.relaxed).toBeDefined();
    expect((await EngineInstance.create(modules, 'auto')).kernel).toBe('relaxed');
    expect((await EngineInstance.create(modules, 'simd128')).exports.engine_probe()).toBe(1);
  });

  for (const kernel of KERNELS) {
    it(`${kernel}: int8 product and dequantisation equal integer arithmetic on random and extreme operands, any shape`, async () => {
      const e = await EngineInstance.create(await engineModules(), kernel);
      expect(e.kernel).toBe(kernel);
      const ex = e.exports;
      const rand = rng(7);
      for (const [T, O, n, extreme] of [[1, 1, 1, false], [3, 7, 37, false], [5, 9, 48, false], [2, 4, 16, true], [7, 13, 200, true], [4, 8, 3072, true]] as const) {
        const x = ex.engine_scratch(T * n), w = ex.engine_scratch(O * n);
        const xs = ex.engine_scratch(4 * T), xz = ex.engine_scratch(4 * T), ws = ex.engine_scratch(4 * O), b = ex.engine_scratch(4 * O), wsum = ex.engine_scratch(4 * O), out = ex.engine_scratch(4 * T * O);
        const mem = e.bytes();
        const xv = new Uint8Array(mem.buffer, x, T * n), wv = new Int8Array(mem.buffer, w, O * n);
        for (let i = 0; i < T * n; i++) xv[i] = extreme ? (i % 3 ? 127 : 0) : Math.floor(rand() * 128);
        for (let i = 0; i < O * n; i++) wv[i] = extreme ? (i % 5 ? -127 : 127) : Math.floor(rand() * 255) - 127;
        // Written into the module's memory (fill, not map: map would copy).
        const fill = <A extends Float32Array | Int32Array>(a: A, f: () => number) => {
          for (let i = 0; i < a.length; i++) a[i] = f();
          return a;
        };
        const xsv = fill(new Float32Array(mem.buffer, xs, T), () => 0.01 + rand());
        const xzv = fill(new Int32Array(mem.buffer, xz, T), () => Math.floor(rand() * 128));
        const wsv = fill(new Float32Array(mem.buffer, ws, O), () => 0.01 + rand());
        const bv = fill(new Float32Array(mem.buffer, b, O), () => rand() - 0.5);
        const sums = new Int32Array(mem.buffer, wsum, O);
        for (let o = 0; o < O; o++) for (let i = 0; i < n; i++) sums[o]! += wv[o * n + i]!;
        ex.engine_qmatmul(out, x, xs, xz, T, w, ws, b, wsum, O, n);
        const got = e.floats(out, T * O);
        for (let t = 0; t < T; t++)
          for (let o = 0; o < O; o++) {
            let acc = 0;
            for (let i = 0; i < n; i++) acc += xv[t * n + i]! * wv[o * n + i]!;
            const want = wsv[o]! * xsv[t]! * (acc - xzv[t]! * sums[o]!) + bv[o]!;
            expect(Math.abs(got[t * O + o]! - want)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
          }
      }
    });
  }

  it('row quantisation: 7 bits with a zero point, round half to even, zero exact', async () => {
    const e = await EngineInstance.create(await engineModules(), 'simd128');
    const ex = e.exports;
    const rand = rng(3);
    for (const values of [Float32Array.from({ length: 77 }, () => rand() * 6 - 2), Float32Array.from({ length: 16 }, () => rand() * 3), new Float32Array(9), Float32Array.of(-1, 0, 0.5)]) {
      const n = values.length;
      const q = ex.engine_scratch(n), zero = ex.engine_scratch(4), x = ex.engine_scratch(4 * n);
      e.floats(x, n).set(values);
      const scale = ex.engine_quantize_row(q, zero, x, n);
      const lo = Math.min(0, ...values), hi = Math.max(0, ...values);
      const wantScale = hi > lo ? Math.fround((hi - lo) / 127) : 1;
      expect(scale).toBe(wantScale);
      const inv = Math.fround(1 / wantScale);
      const z = rint(Math.fround(-lo * inv)) + 0; // not -0
      expect(new Int32Array(ex.memory.buffer, zero, 1)[0]).toBe(z);
      const got = new Uint8Array(ex.memory.buffer, q, n);
      values.forEach((v, i) => expect(got[i]).toBe(Math.max(0, Math.min(127, rint(Math.fround(v * inv)) + z))));
      // Zero maps to the zero point exactly.
      values.forEach((v, i) => v === 0 && expect(got[i]).toBe(z));
    }
  });

  it("TIP-X's pass over half-precision features equals the float32 products (subnormals, zeros and signs included)", async () => {
    const rand = rng(11);
    for (const [M, D] of [[5, 64], [3, 37]] as const) {
      const halves = Uint16Array.from({ length: M * D }, (_, i) => (i % 17 === 0 ? 0x0001 + (i % 5) : i % 19 === 0 ? 0x8000 : i % 23 === 0 ? 0 : Math.floor(rand() * 0x7bff) | (rand() < 0.5 ? 0x8000 : 0)));
      const probes = { data: Float32Array.from({ length: 2 * D }, () => rand() - 0.5), rows: 2, cols: D };
      const W = randomUnitRows(3, D, 4);
      const scoring = await EngineScoring.create(await engineModules(), W, 4, { rows: M, halfBytes: chunksOf(new Uint8Array(halves.buffer), 7) });
      const products = await scoring.products(probes);
      for (let j = 0; j < M; j++)
        for (let p = 0; p < 2; p++) {
          let want = 0, mag = 0;
          for (let d = 0; d < D; d++) {
            want += halfToFloat(halves[j * D + d]!) * probes.data[p * D + d]!;
            mag += Math.abs(halfToFloat(halves[j * D + d]!) * probes.data[p * D + d]!);
          }
          expect(Math.abs(products[2 * j + p]! - want)).toBeLessThanOrEqual(1e-6 * Math.max(1e-30, mag));
        }
      expect(scoring.classifier.data).toEqual(W.data);
    }
  });

  it("CALIP's terms on the engine equal calip.ts (the reference), at odd and ImageNet-like sizes", async () => {
    for (const [C, D, HW] of [[7, 37, 5], [1000, 512, 49]] as const) {
      const W = randomUnitRows(C, D, 1), Fs = randomUnitRows(HW, D, 2), f = randomUnitRows(1, D, 3).data;
      const scoring = await EngineScoring.create(await engineModules(), W, HW);
      const got = await scoring.terms(f, Fs);
      const want = calipTerms(f, Fs, W);
      expect(maxAbsDiff(got.clip, want.clip)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.visualGuidedText, want.visualGuidedText)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.textAwareVisual, want.textAwareVisual)).toBeLessThan(1e-5);
      // Fewer patches than the maximum (a smaller image grid) work too.
      const fewer = { data: Fs.data.subarray(0, 3 * D), rows: 3, cols: D };
      expect(maxAbsDiff((await scoring.terms(f, fewer)).visualGuidedText, calipTerms(f, fewer, W).visualGuidedText)).toBeLessThan(1e-5);
    }
  });
});

describe('engine forward pass against the fp32 ONNX graph', () => {
  for (const variant of ['tiny-p16', 'tiny-p32-f16-legacy', 'tiny-p8-bf16'] as TinyVariant[]) {
    it(`${variant}: image_embeds cosine >= 0.999, the patch tokens of every last block (plain, CSA, NACLIP, ClearCLIP) mean per-patch cosine >= 0.995, both kernels bit-identical`, async () => {
      const { modelDir } = tinyModel(variant);
      const info = readModelInfo(modelDir);
      const S = info.imageSize, N = info.grid ** 2, E = info.embedDim;
      const pixels = new Float32Array(2 * 3 * S * S);
      pixels.set(testPixels(3 * S * S, 1));
      pixels.set(testPixels(3 * S * S, 2), 3 * S * S);
      const every: ImageOutput[] = ['image_embeds', ...ATTENTIONS.map((k) => ATTENTION_OUTPUT[k].output)];
      const reference = await (await openImageEncoder(modelDir)).encode(pixels, every);
      const outputs = [];
      for (const kernel of KERNELS) {
        const engine = await openEngine(modelDir, info, kernel);
        expect(engine.kernel).toBe(kernel);
        const out = await engine.encode(pixels, every);
        for (let b = 0; b < 2; b++) {
          expect(cosine(out.imageEmbeds!.subarray(b * E, (b + 1) * E), reference.imageEmbeds!.subarray(b * E, (b + 1) * E))).toBeGreaterThanOrEqual(0.999);
          for (const kind of ATTENTIONS) {
            const { field } = ATTENTION_OUTPUT[kind];
            expect(meanRowCosine(out[field]!.subarray(b * N * E), reference[field]!.subarray(b * N * E), N, E), `${kind}`).toBeGreaterThanOrEqual(0.995);
          }
        }
        // Asking for fewer outputs changes none of them.
        for (const kind of ['csa', 'naclip', 'clearclip'] as const) {
          const { output, field } = ATTENTION_OUTPUT[kind];
          const only = await engine.encode(pixels.subarray(0, 3 * S * S), [output]);
          expect(only[field]).toEqual(out[field]!.subarray(0, N * E));
          expect(only.imageEmbeds).toBeUndefined();
        }
        outputs.push(out);
      }
      // Both kernels compute the same integers, and everything else is the same code.
      expect(outputs[1]!.imageEmbeds).toEqual(outputs[0]!.imageEmbeds);
      for (const kind of ATTENTIONS) expect(outputs[1]![ATTENTION_OUTPUT[kind].field]).toEqual(outputs[0]![ATTENTION_OUTPUT[kind].field]);
    });
  }

  const TEXTS = ['a photo of a dog.', 'x', 'a bright red star on a white background, drawn with a thick pen.', 'word '.repeat(90)];
  for (const variant of ['tiny-p16', 'tiny-p32-f16-legacy', 'tiny-p8-bf16'] as TinyVariant[]) {
    it(`${variant}: the text tower on the engine within cosine 0.999 of the fp32 text graph (pooling as the config says, over-long text cut), both kernels bit-identical, batched passes equal to one text at a time`, async () => {
      const { modelDir } = tinyModel(variant);
      const info = readModelInfo(modelDir);
      const tokenizer = openTokenizer(modelDir);
      const rows = TEXTS.map((t) => tokenizer.tokenize(t, info.contextLength));
      const reference = await (await openTextEncoder(modelDir)).encode(rows);
      const E = info.embedDim;
      const outputs: Float32Array[][] = [];
      for (const kernel of KERNELS) {
        const engine = await openTextEngine(modelDir, info, kernel);
        expect(engine.kernel).toBe(kernel);
        const out = rows.map((ids) => engine.encode(pooledTokens(ids, info.eosTokenId)));
        out.forEach((e, i) => expect(cosine(e, reference.subarray(i * E, (i + 1) * E)), TEXTS[i]).toBeGreaterThanOrEqual(0.999));
        // No tokens, more than the context, an id outside the vocabulary: refused, not read out of bounds.
        expect(() => engine.encode([])).toThrow(EngineError);
        expect(() => engine.encode(new Array(info.contextLength + 1).fill(1))).toThrow(EngineError);
        expect(() => engine.encode([49408])).toThrow(/vocabulary/);
        // Many texts packed into passes (here 3: each text attends only within itself) give the
        // same bits as one at a time.
        const many = Array.from({ length: 60 }, (_, i) => pooledTokens(tokenizer.tokenize(i % 7 === 0 ? TEXTS[3]! : `a photo of a thing number ${i}.`, info.contextLength), info.eosTokenId));
        expect(many.reduce((a, t) => a + t.length, 0)).toBeGreaterThan(512);
        expect(engine.encodeMany(many)).toEqual(many.map((ids) => engine.encode(ids)));
        outputs.push(out);
      }
      expect(outputs[1]).toEqual(outputs[0]);
    });
  }

  it("V8's other lowering of the relaxed dot product (SSE, --no-enable-avx) gives the same bits", { timeout: 60_000 }, async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const info = readModelInfo(modelDir);
    const engine = await openEngine(modelDir, info, 'relaxed');
    const pixels = testPixels(3 * info.imageSize ** 2, 1);
    const here = await engine.encode(pixels, ['image_embeds']);
    const script = join(tempDir('sse'), 'run.mts');
    writeFileSync(
      script,
      `import { openEngine } from ${JSON.stringify(join(import.meta.dirname, '../engine/node.ts'))};
import { readModelInfo } from ${JSON.stringify(join(import.meta.dirname, '../models/load-model.ts'))};
import { testPixels } from ${JSON.stringify(join(import.meta.dirname, 'helpers.ts'))};
const info = readModelInfo(${JSON.stringify(modelDir)});
const e = await openEngine(${JSON.stringify(modelDir)}, info, 'relaxed');
const out = await e.encode(testPixels(3 * info.imageSize ** 2, 1), ['image_embeds']);
process.stdout.write(JSON.stringify({ kernel: e.kernel, embeds: Array.from(out.imageEmbeds) }));`,
    );
    const child = JSON.parse(execFileSync(process.execPath, ['--no-enable-avx', '--import', 'tsx', script], { encoding: 'utf8' })) as { kernel: string; embeds: number[] };
    expect(child.kernel).toBe('relaxed');
    expect(Float32Array.from(child.embeds)).toEqual(here.imageEmbeds);
  });
});

describe('engine weight blobs that must be refused', () => {
  const load = async (bytes: Uint8Array, modelDir = tinyModel('tiny-p16').modelDir) => VitEngine.load(await engineModules(), readModelInfo(modelDir), { bytes: bytes.length, chunks: chunksOf(bytes, 100) });
  const blobOf = (variant: TinyVariant) => {
    const { modelDir } = tinyModel(variant);
    return new Uint8Array(readFileSync(join(modelDir, readModelInfo(modelDir).files.engineWeights)));
  };

  it('loads the good blob, in chunks smaller than its header', async () => {
    expect((await load(blobOf('tiny-p16'))).memoryBytes).toBeGreaterThan(0);
  });
  it('truncated', async () => {
    await expect(load(blobOf('tiny-p16').subarray(0, 1000))).rejects.toThrow(/blob size does not match its header/);
    await expect(load(blobOf('tiny-p16').subarray(0, 100))).rejects.toThrow(/truncated/);
  });
  it('declared longer than it is', async () => {
    const bytes = blobOf('tiny-p16');
    await expect(VitEngine.load(await engineModules(), readModelInfo(tinyModel('tiny-p16').modelDir), { bytes: bytes.length, chunks: chunksOf(bytes.subarray(0, bytes.length - 10)) })).rejects.toThrow(/truncated \(\d+ of \d+ bytes\)/);
  });
  it('tampered (sha256 in model.json)', async () => {
    const { modelDir } = tinyModel('tiny-p16');
    const copy = join(tempDir('tampered'), 'model');
    execFileSync('cp', ['-r', modelDir, copy]);
    const info = readModelInfo(copy);
    const bytes = blobOf('tiny-p16');
    bytes[HEADER_BYTES + 5]! ^= 1;
    writeFileSync(join(copy, info.files.engineWeights), bytes);
    await expect(openEngine(copy, info)).rejects.toThrow(/do not match their sha256 in model.json/);
  });
  it('a blob of another model', async () => {
    await expect(load(blobOf('tiny-p8-bf16'))).rejects.toThrow(/the blob is for another model \(3x32, patch 8 @ 64px, embed 16\)/);
  });
  it('not a blob at all', async () => {
    await expect(load(new Uint8Array(4096).fill(7))).rejects.toThrow(/not an engine weight blob/);
  });
  it('a configuration the engine does not support', async () => {
    const bytes = blobOf('tiny-p16');
    const header = readHeader(bytes)!;
    bytes.set(writeHeader({ ...header, heads: 3 }), 0); // 32 is not a multiple of 3
    await expect(load(bytes)).rejects.toThrow(/configuration the engine does not support/);
    bytes.set(writeHeader({ ...header, layers: 65 }), 0);
    await expect(load(bytes)).rejects.toThrow(/another model|does not support/);
  });
  it('a missing blob file says to convert again', async () => {
    const info = { ...readModelInfo(tinyModel('tiny-p16').modelDir), files: { ...readModelInfo(tinyModel('tiny-p16').modelDir).files, engineWeights: 'nope.bin' } };
    await expect(openEngine(tinyModel('tiny-p16').modelDir, info)).rejects.toThrow(EngineError);
  });
});
