// The image and text towers of published CLIP checkpoints, as their Hugging Face
// config.json files give them (transcribed: no checkpoint can be downloaded here). Tests and
// benchmarks generate random weights at these real sizes (never committed) and run them
// through convert -> engine -> Worker.
import type { TinySpec } from './tiny-checkpoints.js';

type Published = Omit<TinySpec, 'dtype' | 'tokenizerFiles' | 'seed'>;

const B32 = { imageSize: 224, patchSize: 32, visionWidth: 768, visionLayers: 12, visionHeads: 12, textWidth: 512, textLayers: 12, textHeads: 8, projectionDim: 512 } as const;

export const PUBLISHED_CONFIGS = {
  'openai/clip-vit-base-patch32': { ...B32, act: 'quick_gelu', eosTokenId: 2 },
  'openai/clip-vit-base-patch16': { ...B32, patchSize: 16, act: 'quick_gelu', eosTokenId: 2 },
  'laion/CLIP-ViT-B-32-laion2B-s34B-b79K': { ...B32, act: 'gelu', eosTokenId: 2 },
  'facebook/metaclip-b32-400m': { ...B32, act: 'quick_gelu', eosTokenId: 2 },
  'wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M': { imageSize: 224, patchSize: 16, visionWidth: 256, visionLayers: 10, visionHeads: 4, textWidth: 256, textLayers: 3, textHeads: 4, projectionDim: 512, act: 'quick_gelu', eosTokenId: 2 },
  'wkcn/TinyCLIP-ViT-39M-16-Text-19M-YFCC15M': { imageSize: 224, patchSize: 16, visionWidth: 512, visionLayers: 12, visionHeads: 8, textWidth: 512, textLayers: 6, textHeads: 8, projectionDim: 512, act: 'quick_gelu', eosTokenId: 2 },
  'wkcn/TinyCLIP-ViT-61M-32-Text-29M-LAION400M': { imageSize: 224, patchSize: 32, visionWidth: 640, visionLayers: 12, visionHeads: 10, textWidth: 512, textLayers: 6, textHeads: 8, projectionDim: 512, act: 'quick_gelu', eosTokenId: 2 },
  'openai/clip-vit-large-patch14': { imageSize: 224, patchSize: 14, visionWidth: 1024, visionLayers: 24, visionHeads: 16, textWidth: 768, textLayers: 12, textHeads: 12, projectionDim: 768, act: 'quick_gelu', eosTokenId: 2 },
} satisfies Record<string, Published>;

export type PublishedModel = keyof typeof PUBLISHED_CONFIGS;

/**
 * A spec at the published size. `smallText`: a one-layer text tower of the same width
 * family, for image-tower tests and benchmarks where the text tower's size does not matter
 * (the Worker never loads it) and would only cost time.
 */
export function publishedSpec(model: PublishedModel, options: { smallText?: boolean; seed?: number } = {}): TinySpec {
  const p: Published = PUBLISHED_CONFIGS[model];
  const text = options.smallText ? { textWidth: 64, textLayers: 1, textHeads: 1 } : {};
  return { ...p, ...text, dtype: 'F16', tokenizerFiles: 'vocab+merges', seed: options.seed ?? 11 };
}
