// Deterministic small CLIP checkpoints in the exact HF layout (random seeded weights,
// CLIP's real BPE vocabulary). Every test of the builder, indexer and Worker runs on these.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledVocabulary } from './bundled-vocab.js';
import { expectedShapes, parseConfig, type Activation, type Checkpoint } from './checkpoint.js';
import { writeSafetensors, type FloatDtype, type Tensor } from './safetensors.js';

export interface TinySpec {
  imageSize: number;
  patchSize: number;
  visionWidth: number;
  visionLayers: number;
  visionHeads: number;
  textWidth: number;
  textLayers: number;
  textHeads: number;
  projectionDim: number;
  act: Activation;
  /** 2 = legacy HF config (argmax pooling), 49407 = first-eos pooling. */
  eosTokenId: 2 | 49407;
  dtype: FloatDtype;
  tokenizerFiles: 'vocab+merges' | 'tokenizer.json';
  seed: number;
}

const base = { act: 'quick_gelu', eosTokenId: 49407, dtype: 'F32', tokenizerFiles: 'vocab+merges', seed: 1 } as const;

export const TINY_VARIANTS = {
  /** patch 16 on 64 px, F32, first-eos pooling, vocab.json + merges.txt. */
  'tiny-p16': { ...base, imageSize: 64, patchSize: 16, visionWidth: 32, visionLayers: 2, visionHeads: 2, textWidth: 32, textLayers: 2, textHeads: 2, projectionDim: 24 },
  /** patch 32 on 224 px, F16, legacy eos_token_id 2, gelu, tokenizer.json only. */
  'tiny-p32-f16-legacy': { ...base, imageSize: 224, patchSize: 32, visionWidth: 48, visionLayers: 2, visionHeads: 4, textWidth: 32, textLayers: 2, textHeads: 4, projectionDim: 32, act: 'gelu', eosTokenId: 2, dtype: 'F16', tokenizerFiles: 'tokenizer.json', seed: 2 },
  /** patch 8 on 64 px, BF16, gelu_new. */
  'tiny-p8-bf16': { ...base, imageSize: 64, patchSize: 8, visionWidth: 32, visionLayers: 3, visionHeads: 4, textWidth: 32, textLayers: 1, textHeads: 2, projectionDim: 16, act: 'gelu_new', dtype: 'BF16', seed: 3 },
  /** TinyCLIP-shaped image tower (vision width 256, 10 layers, patch 16) for benchmarks. */
  'tinyclip-shaped': { ...base, imageSize: 224, patchSize: 16, visionWidth: 256, visionLayers: 10, visionHeads: 4, textWidth: 256, textLayers: 3, textHeads: 4, projectionDim: 256, seed: 4 },
  /** ViT-B/32-shaped (88 M image tower), generated on demand for benchmarks, never committed. */
  'vit-b32-shaped': { ...base, imageSize: 224, patchSize: 32, visionWidth: 768, visionLayers: 12, visionHeads: 12, textWidth: 512, textLayers: 12, textHeads: 8, projectionDim: 512, seed: 5 },
} satisfies Record<string, TinySpec>;

export type TinyVariant = keyof typeof TINY_VARIANTS;

/** mulberry32 + Box-Muller: small, seedable, identical on every platform. */
function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

export function tinyConfig(spec: TinySpec): Record<string, unknown> {
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: spec.projectionDim,
    logit_scale_init_value: 2.6592,
    text_config: {
      hidden_size: spec.textWidth,
      intermediate_size: spec.textWidth * 4,
      num_attention_heads: spec.textHeads,
      num_hidden_layers: spec.textLayers,
      max_position_embeddings: 77,
      vocab_size: 49408,
      hidden_act: spec.act,
      layer_norm_eps: 1e-5,
      bos_token_id: spec.eosTokenId === 2 ? 0 : 49406,
      eos_token_id: spec.eosTokenId,
      pad_token_id: 1,
    },
    vision_config: {
      hidden_size: spec.visionWidth,
      intermediate_size: spec.visionWidth * 4,
      num_attention_heads: spec.visionHeads,
      num_hidden_layers: spec.visionLayers,
      image_size: spec.imageSize,
      patch_size: spec.patchSize,
      hidden_act: spec.act,
      layer_norm_eps: 1e-5,
      num_channels: 3,
    },
  };
}

/** Seeded random weights for every tensor the config implies (optionally a subset). */
export function tinyWeights(spec: TinySpec, include: (name: string) => boolean = () => true): Map<string, Tensor> {
  const rand = gaussian(spec.seed);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedShapes(parseConfig(tinyConfig(spec)))) {
    if (!include(name)) continue;
    const count = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const fanIn = shape.length > 1 ? count / shape[0]! : 1;
    const isNorm = /layer_?norm|layrnorm/.test(name);
    // LayerNorm gains near 1; embeddings ~0.5 so attention is far from uniform; linear ~1/sqrt(fan_in).
    const std = isNorm ? 0.1 : name.includes('embedding') ? 0.5 : 1 / Math.sqrt(fanIn);
    for (let i = 0; i < count; i++) data[i] = (isNorm && name.endsWith('weight') ? 1 : 0) + std * rand();
    tensors.set(name, { shape, data });
  }
  tensors.set('logit_scale', { shape: [], data: Float32Array.of(Math.log(100)) });
  return tensors;
}

/** The image tower of a spec as an in-memory checkpoint (no text weights): image-tower tests and benchmarks at real sizes. */
export function visionCheckpoint(spec: TinySpec): Checkpoint {
  return { config: parseConfig(tinyConfig(spec)), weights: tinyWeights(spec, (n) => !n.startsWith('text')) } as Checkpoint;
}

/** The text tower of a spec as an in-memory checkpoint (no image weights): text-engine tests and benchmarks at real sizes. */
export function textCheckpoint(spec: TinySpec): Checkpoint {
  return { config: parseConfig(tinyConfig(spec)), weights: tinyWeights(spec, (n) => !n.startsWith('vision') && !n.startsWith('visual')) } as Checkpoint;
}

export function writeTinyCheckpoint(spec: TinySpec, dir: string): void {
  const config = tinyConfig(spec);
  const tensors = tinyWeights(spec);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors, spec.dtype));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(
    join(dir, 'preprocessor_config.json'),
    JSON.stringify({
      crop_size: { height: spec.imageSize, width: spec.imageSize },
      do_center_crop: true,
      do_normalize: true,
      do_resize: true,
      do_convert_rgb: true,
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_std: [0.26862954, 0.26130258, 0.27577711],
      resample: 3,
      size: { shortest_edge: spec.imageSize },
      image_processor_type: 'CLIPImageProcessor',
    }, null, 2),
  );
  const { vocab, merges } = bundledVocabulary();
  if (spec.tokenizerFiles === 'vocab+merges') {
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
    writeFileSync(join(dir, 'merges.txt'), ['#version: 0.2', ...merges].join('\n') + '\n');
  } else {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab, merges } }));
  }
}
