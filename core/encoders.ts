// Runs the converted ONNX graphs through any onnxruntime flavour (onnxruntime-node in
// the indexer, onnxruntime-web/WASM in the Worker): both expose the same API.
import type { InferenceSession, Tensor, TypedTensor } from 'onnxruntime-common';
import type { ModelInfo } from './model-info.js';

/** The part of an onnxruntime module we use. */
export interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  Tensor: {
    new (type: 'float32', data: Float32Array, dims: readonly number[]): TypedTensor<'float32'>;
    new (type: 'int64', data: BigInt64Array, dims: readonly number[]): TypedTensor<'int64'>;
  };
}

export type ImageOutput = 'image_embeds' | 'patch_embeds' | 'csa_patch_embeds' | 'naclip_patch_embeds' | 'clearclip_patch_embeds';

export interface ImageEmbeddings {
  batch: number;
  /** [B,D], not normalised. */
  imageEmbeds?: Float32Array;
  /** [B,G*G,D], row-major patch order. */
  patchEmbeds?: Float32Array;
  /** [B,G*G,D] with SCLIP's CSA in the last block. */
  csaPatchEmbeds?: Float32Array;
  /** [B,G*G,D] with NACLIP's last block (key-key attention + Gaussian neighbourhood; no residual, no MLP). */
  naclipPatchEmbeds?: Float32Array;
  /** [B,G*G,D] with ClearCLIP's last block (query-query attention; no residual, no MLP). */
  clearclipPatchEmbeds?: Float32Array;
}

/**
 * The last block's attention for patch features (segmentation): SCLIP's CSA, NACLIP's, ClearCLIP's,
 * or the plain block. Each is one output of the image tower, sharing every block before the last.
 */
export const ATTENTIONS = ['csa', 'naclip', 'clearclip', 'vanilla'] as const;
export type Attention = (typeof ATTENTIONS)[number];

export const ATTENTION_OUTPUT: Record<Attention, { output: ImageOutput; field: keyof Omit<ImageEmbeddings, 'batch'> }> = {
  csa: { output: 'csa_patch_embeds', field: 'csaPatchEmbeds' },
  naclip: { output: 'naclip_patch_embeds', field: 'naclipPatchEmbeds' },
  clearclip: { output: 'clearclip_patch_embeds', field: 'clearclipPatchEmbeds' },
  vanilla: { output: 'patch_embeds', field: 'patchEmbeds' },
};

/** What segmentation uses unless asked otherwise (README: the eval table). */
export const DEFAULT_ATTENTION: Attention = 'csa';

export const ATTENTION_NAMES: Record<Attention, string> = { csa: 'CSA (SCLIP)', naclip: 'NACLIP', clearclip: 'ClearCLIP', vanilla: 'plain last block' };

/** NACLIP's Gaussian neighbourhood width, in patches (the official default, gaussian_std = 5). */
export const NACLIP_SIGMA = 5;

/** An image tower: the ONNX graph on onnxruntime, or the int8 engine (engine/engine.ts). */
export interface ImageTower {
  readonly info: ModelInfo;
  /** pixels: [B,3,S,S] preprocessed. */
  encode(pixels: Float32Array, outputs?: ImageOutput[]): Promise<ImageEmbeddings>;
  release(): Promise<void>;
}

function floats(t: Tensor | undefined, name: string): Float32Array {
  if (!t || !(t.data instanceof Float32Array)) throw new Error(`model output ${name} is missing or not float32`);
  return t.data;
}

export class ImageEncoder implements ImageTower {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: InferenceSession,
    readonly info: ModelInfo,
  ) {}

  static async create(ort: OrtModule, onnxBytes: Uint8Array, info: ModelInfo, options: InferenceSession.SessionOptions = {}): Promise<ImageEncoder> {
    return new ImageEncoder(ort, await ort.InferenceSession.create(onnxBytes, options), info);
  }

  /** pixels: [B,3,S,S] preprocessed. */
  async encode(pixels: Float32Array, outputs: ImageOutput[] = ['image_embeds', 'patch_embeds', 'csa_patch_embeds']): Promise<ImageEmbeddings> {
    const S = this.info.imageSize;
    const batch = pixels.length / (3 * S * S);
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`pixel buffer of ${pixels.length} floats is not a whole number of ${S}x${S} RGB images`);
    const feeds = { pixel_values: new this.ort.Tensor('float32', pixels, [batch, 3, S, S]) };
    const result = await this.session.run(feeds, outputs);
    const out: ImageEmbeddings = { batch };
    if (outputs.includes('image_embeds')) out.imageEmbeds = floats(result.image_embeds, 'image_embeds');
    for (const { output, field } of Object.values(ATTENTION_OUTPUT)) if (outputs.includes(output)) out[field] = floats(result[output], output);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export class TextEncoder {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: InferenceSession,
    readonly info: ModelInfo,
  ) {}

  static async create(ort: OrtModule, onnxBytes: Uint8Array, info: ModelInfo, options: InferenceSession.SessionOptions = {}): Promise<TextEncoder> {
    return new TextEncoder(ort, await ort.InferenceSession.create(onnxBytes, options), info);
  }

  /** ids: rows of contextLength token ids -> [B,D] text embeddings, not normalised. */
  async encode(ids: number[][]): Promise<Float32Array> {
    const T = this.info.contextLength;
    const flat = new BigInt64Array(ids.length * T);
    ids.forEach((row, b) => {
      if (row.length !== T) throw new Error(`token row ${b} has ${row.length} ids, expected ${T}`);
      row.forEach((id, i) => (flat[b * T + i] = BigInt(id)));
    });
    const result = await this.session.run({ input_ids: new this.ort.Tensor('int64', flat, [ids.length, T]) });
    return floats(result.text_embeds, 'text_embeds');
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
