// Writes the engine's weight blobs (format: blob-format.ts) from a checkpoint's image and text towers.
import type { Checkpoint } from '../models/checkpoint.js';
import { align16, blobBytes, floatsBytes, HEADER_BYTES, textBlobBytes, writeHeader, writeTextHeader, type EngineHeader, type TextEngineHeader } from './blob-format.js';

class BlobWriter {
  private offset = HEADER_BYTES;
  constructor(readonly bytes: Uint8Array) {}

  floats(values: ArrayLike<number>): void {
    new Float32Array(this.bytes.buffer, this.offset, values.length).set(values);
    this.offset += floatsBytes(values.length);
  }

  /** weight [out, in] row-major, symmetric int8 per output row (|q| <= 127). */
  qlinear(weight: Float32Array, bias: Float32Array | null, out: number, inDim: number): void {
    const q = new Int8Array(this.bytes.buffer, this.offset, out * inDim);
    const scale = new Float32Array(out), sums = new Int32Array(out);
    for (let o = 0; o < out; o++) {
      let max = 0;
      for (let i = 0; i < inDim; i++) max = Math.max(max, Math.abs(weight[o * inDim + i]!));
      const s = max > 0 ? max / 127 : 1;
      scale[o] = s;
      let sum = 0;
      for (let i = 0; i < inDim; i++) {
        const v = Math.max(-127, Math.min(127, Math.round(weight[o * inDim + i]! / s)));
        q[o * inDim + i] = v;
        sum += v;
      }
      sums[o] = sum;
    }
    this.offset += align16(out * inDim);
    this.floats(scale);
    this.floats(bias ?? new Float32Array(out));
    new Int32Array(this.bytes.buffer, this.offset, out).set(sums);
    this.offset += floatsBytes(out);
  }

  end(): number {
    return this.offset;
  }
}

const tensorOf = (ck: Checkpoint) => (name: string) => {
  const tensor = ck.weights.get(name);
  if (!tensor) throw new Error(`checkpoint tensor ${name} is missing`);
  return tensor.data;
};

/** The transformer layers of one tower (`vision_model` or `text_model`), in transformer.c's order. */
function writeLayers(out: BlobWriter, ck: Checkpoint, tower: 'vision_model' | 'text_model', layers: number, D: number, I: number): void {
  const t = tensorOf(ck);
  for (let l = 0; l < layers; l++) {
    const p = `${tower}.encoder.layers.${l}`;
    const linear = (name: string, o: number, i: number) => out.qlinear(t(`${p}.${name}.weight`), ck.weights.get(`${p}.${name}.bias`)?.data ?? null, o, i);
    out.floats(t(`${p}.layer_norm1.weight`));
    out.floats(t(`${p}.layer_norm1.bias`));
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(`self_attn.${proj}`, D, D);
    out.floats(t(`${p}.layer_norm2.weight`));
    out.floats(t(`${p}.layer_norm2.bias`));
    linear('mlp.fc1', I, D);
    linear('mlp.fc2', D, I);
  }
}

function finished(out: BlobWriter, bytes: Uint8Array): Uint8Array {
  if (out.end() !== bytes.length) throw new Error(`engine blob layout: wrote ${out.end()} bytes, expected ${bytes.length}`);
  return bytes;
}

/** The engine blob of a checkpoint's image tower. */
export function buildEngineBlob(ck: Checkpoint): Uint8Array {
  const v = ck.config.vision;
  const D = v.hidden, I = v.intermediate, E = ck.config.projectionDim;
  const dims = { imageSize: v.imageSize, patchSize: v.patchSize, dim: D, hiddenDim: I, heads: v.heads, layers: v.layers, embedDim: E };
  const header: EngineHeader = { ...dims, act: v.act, eps: v.eps, blobBytes: blobBytes(dims) };
  const bytes = new Uint8Array(header.blobBytes);
  bytes.set(writeHeader(header));
  const t = tensorOf(ck);
  const out = new BlobWriter(bytes);
  // The conv weight [D, 3, P, P] is already [D, 3·P·P] in (channel, y, x) order.
  out.qlinear(t('vision_model.embeddings.patch_embedding.weight'), null, D, 3 * v.patchSize ** 2);
  out.floats(t('vision_model.embeddings.class_embedding'));
  out.floats(t('vision_model.embeddings.position_embedding.weight'));
  out.floats(t('vision_model.pre_layrnorm.weight'));
  out.floats(t('vision_model.pre_layrnorm.bias'));
  writeLayers(out, ck, 'vision_model', v.layers, D, I);
  out.floats(t('vision_model.post_layernorm.weight'));
  out.floats(t('vision_model.post_layernorm.bias'));
  out.qlinear(t('visual_projection.weight'), null, E, D);
  return finished(out, bytes);
}

/** The engine blob of a checkpoint's text tower (engine/clip_text.c). */
export function buildTextEngineBlob(ck: Checkpoint): Uint8Array {
  const x = ck.config.text;
  const D = x.hidden, E = ck.config.projectionDim;
  const dims = { vocabSize: x.vocabSize, contextLength: x.contextLength, dim: D, hiddenDim: x.intermediate, heads: x.heads, layers: x.layers, embedDim: E };
  const header: TextEngineHeader = { ...dims, act: x.act, eps: x.eps, blobBytes: textBlobBytes(dims) };
  const bytes = new Uint8Array(header.blobBytes);
  bytes.set(writeTextHeader(header));
  const t = tensorOf(ck);
  const out = new BlobWriter(bytes);
  // Each token's row is int8 with its own scale: the same per-row quantisation as a linear layer's.
  out.qlinear(t('text_model.embeddings.token_embedding.weight'), null, x.vocabSize, D);
  out.floats(t('text_model.embeddings.position_embedding.weight'));
  writeLayers(out, ck, 'text_model', x.layers, D, x.intermediate);
  out.floats(t('text_model.final_layer_norm.weight'));
  out.floats(t('text_model.final_layer_norm.bias'));
  out.qlinear(t('text_projection.weight'), null, E, D);
  return finished(out, bytes);
}
