// Image and text embedding for the indexer. Images go through the int8 engine by default,
// the Worker's own image tower, so index and requests agree; `onnxruntime` runs the fp32
// graph on onnxruntime-node (CPU, or CUDA with --device cuda). Texts: onnxruntime-node.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-common';
import { decodeImage } from '../core/decode.js';
import { ImageEncoder, TextEncoder, type ImageTower } from '../core/encoders.js';
import { openEngine } from '../engine/node.js';
import { preprocess } from '../core/image.js';
import { matrix, normalizeRows, type Matrix } from '../core/linalg.js';
import type { ModelInfo } from '../core/model-info.js';
import type { ClipTokenizer } from '../core/tokenizer.js';
import { modelJsonSha256, onnxruntimeNode, openTokenizer, readModelInfo } from '../models/load-model.js';

export type Device = 'cpu' | 'cuda';
export type ImageRuntimeChoice = 'engine' | 'onnxruntime';

export class Embedder {
  private constructor(
    readonly info: ModelInfo,
    readonly modelJsonSha256: string,
    private readonly image: ImageTower,
    private readonly text: TextEncoder,
    readonly tokenizer: ClipTokenizer,
    readonly device: Device,
    readonly imageRuntime: ImageRuntimeChoice,
  ) {}

  /**
   * `--device cuda` runs the fp32 graphs on onnxruntime-node's CUDA provider (the engine is
   * CPU-only) and falls back to CPU with a message when the provider cannot load.
   */
  static async open(modelDir: string, device: Device, log: (line: string) => void, imageRuntime: ImageRuntimeChoice = device === 'cuda' ? 'onnxruntime' : 'engine'): Promise<Embedder> {
    const info = readModelInfo(modelDir);
    const sha = modelJsonSha256(modelDir);
    const ort = await onnxruntimeNode();
    const textBytes = readFileSync(join(modelDir, info.files.textEncoder));
    let used: Device = 'cpu';
    let options: InferenceSession.SessionOptions = {};
    if (device === 'cuda') {
      try {
        await ort.InferenceSession.create(textBytes, { executionProviders: ['cuda'] });
        options = { executionProviders: ['cuda'] };
        used = 'cuda';
      } catch (e) {
        log(`--device cuda: the CUDA provider could not load (${(e as Error).message.split('\n')[0]}); continuing on CPU`);
      }
    }
    const image = imageRuntime === 'engine' ? await openEngine(modelDir, info) : await ImageEncoder.create(ort, readFileSync(join(modelDir, info.files.imageEncoder)), info, options);
    const text = await TextEncoder.create(ort, textBytes, info, options);
    return new Embedder(info, sha, image, text, openTokenizer(modelDir), used, imageRuntime);
  }

  /** Encoded image bytes -> normalised image embeds [B,D] and patch embeds [B][HW,D]. */
  async embedImages(images: Uint8Array[], withPatches: boolean): Promise<{ embeds: Matrix; patches: Matrix[] }> {
    const S = this.info.imageSize, D = this.info.embedDim, HW = this.info.grid ** 2;
    const pixels = new Float32Array(images.length * 3 * S * S);
    images.forEach((bytes, i) => pixels.set(preprocess(decodeImage(bytes), this.info.preprocess), i * 3 * S * S));
    const out = await this.image.encode(pixels, withPatches ? ['image_embeds', 'patch_embeds'] : ['image_embeds']);
    const embeds = normalizeRows(matrix(out.imageEmbeds!, images.length, D));
    const patches = withPatches ? images.map((_, i) => normalizeRows(matrix(out.patchEmbeds!.slice(i * HW * D, (i + 1) * HW * D), HW, D))) : [];
    return { embeds, patches };
  }

  /** Texts -> normalised text embeds [N,D], in batches. */
  async embedTexts(texts: string[], batch = 64, onBatch: (n: number) => void = () => {}): Promise<Matrix> {
    const D = this.info.embedDim;
    const out = new Float32Array(texts.length * D);
    for (let i = 0; i < texts.length; i += batch) {
      const chunk = texts.slice(i, i + batch);
      out.set(await this.text.encode(chunk.map((t) => this.tokenizer.tokenize(t, this.info.contextLength))), i * D);
      onBatch(chunk.length);
    }
    return normalizeRows(matrix(out, texts.length, D));
  }

  async close(): Promise<void> {
    await this.image.release();
    await this.text.release();
  }
}
