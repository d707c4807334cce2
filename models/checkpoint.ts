// Loads and validates a Hugging Face `CLIPModel` checkpoint folder (config.json,
// model.safetensors, tokenizer files, preprocessor_config.json).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, type Tensor } from './safetensors.js';
import { parseMerges } from '../core/tokenizer.js';

export type Activation = 'quick_gelu' | 'gelu' | 'gelu_new';

export interface TowerConfig {
  hidden: number;
  intermediate: number;
  heads: number;
  layers: number;
  act: Activation;
  eps: number;
}
export interface VisionConfig extends TowerConfig {
  imageSize: number;
  patchSize: number;
}
export interface TextConfig extends TowerConfig {
  vocabSize: number;
  contextLength: number;
  eosTokenId: number;
}
export interface ClipConfig {
  projectionDim: number;
  vision: VisionConfig;
  text: TextConfig;
}

export interface PreprocessConfig {
  /** Shortest side after resize. */
  resizeShortest: number;
  cropSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** PIL resample code; we implement bicubic (3) and bilinear (2). */
  resample: 'bicubic' | 'bilinear';
}

export interface Checkpoint {
  dir: string;
  config: ClipConfig;
  preprocess: PreprocessConfig;
  weights: Map<string, Tensor>;
  /** Dtype of the stored weights (F32, F16 or BF16). */
  sourceDtype: string;
  tokenizer: { vocab: Record<string, number>; merges: string[] };
}

export class CheckpointError extends Error {}

type Json = Record<string, unknown>;

function num(obj: Json, key: string, fallback: number): number {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(`config.json: ${key} must be a number`);
  return v;
}

function activation(obj: Json, where: string): Activation {
  const act = obj.hidden_act ?? 'quick_gelu';
  if (act === 'quick_gelu' || act === 'gelu') return act;
  if (act === 'gelu_new' || act === 'gelu_pytorch_tanh') return 'gelu_new';
  throw new CheckpointError(`config.json: ${where}.hidden_act "${String(act)}" is not supported (quick_gelu, gelu, gelu_new)`);
}

export function parseConfig(cfg: Json): ClipConfig {
  const archs = cfg.architectures;
  if (cfg.model_type !== 'clip' || (Array.isArray(archs) && !archs.includes('CLIPModel'))) {
    throw new CheckpointError(
      `config.json: unsupported architecture (model_type=${JSON.stringify(cfg.model_type)}, architectures=${JSON.stringify(archs)}); expected a Hugging Face CLIPModel with a ViT image tower`,
    );
  }
  const v = (cfg.vision_config ?? {}) as Json;
  const t = (cfg.text_config ?? {}) as Json;
  if (v.model_type && v.model_type !== 'clip_vision_model') throw new CheckpointError(`config.json: vision tower ${String(v.model_type)} is not a CLIP ViT`);
  const projectionDim = num(cfg, 'projection_dim', 512);
  const config: ClipConfig = {
    projectionDim,
    vision: {
      hidden: num(v, 'hidden_size', 768),
      intermediate: num(v, 'intermediate_size', 3072),
      heads: num(v, 'num_attention_heads', 12),
      layers: num(v, 'num_hidden_layers', 12),
      act: activation(v, 'vision_config'),
      eps: num(v, 'layer_norm_eps', 1e-5),
      imageSize: num(v, 'image_size', 224),
      patchSize: num(v, 'patch_size', 32),
    },
    text: {
      hidden: num(t, 'hidden_size', 512),
      intermediate: num(t, 'intermediate_size', 2048),
      heads: num(t, 'num_attention_heads', 8),
      layers: num(t, 'num_hidden_layers', 12),
      act: activation(t, 'text_config'),
      eps: num(t, 'layer_norm_eps', 1e-5),
      vocabSize: num(t, 'vocab_size', 49408),
      contextLength: num(t, 'max_position_embeddings', 77),
      eosTokenId: num(t, 'eos_token_id', 49407),
    },
  };
  for (const [name, tower] of [['vision', config.vision], ['text', config.text]] as const) {
    if (tower.hidden % tower.heads !== 0) throw new CheckpointError(`config.json: ${name} hidden_size ${tower.hidden} is not divisible by num_attention_heads ${tower.heads}`);
  }
  if (config.vision.imageSize % config.vision.patchSize !== 0) {
    throw new CheckpointError(`config.json: image_size ${config.vision.imageSize} is not a multiple of patch_size ${config.vision.patchSize}`);
  }
  return config;
}

export function parsePreprocess(cfg: Json, imageSize: number): PreprocessConfig {
  const size = cfg.size;
  const resizeShortest = typeof size === 'number' ? size : ((size as Json | undefined)?.shortest_edge as number | undefined) ?? imageSize;
  const crop = cfg.crop_size;
  const cropSize = typeof crop === 'number' ? crop : ((crop as Json | undefined)?.height as number | undefined) ?? imageSize;
  const mean = (cfg.image_mean as number[] | undefined) ?? [0.48145466, 0.4578275, 0.40821073];
  const std = (cfg.image_std as number[] | undefined) ?? [0.26862954, 0.26130258, 0.27577711];
  if (mean.length !== 3 || std.length !== 3) throw new CheckpointError('preprocessor_config.json: image_mean and image_std need 3 values');
  if (cropSize !== imageSize) throw new CheckpointError(`preprocessor_config.json: crop size ${cropSize} differs from the model's image_size ${imageSize}`);
  const resample = cfg.resample ?? 3;
  if (resample !== 3 && resample !== 2) throw new CheckpointError(`preprocessor_config.json: resample ${String(resample)} is not supported (2 bilinear, 3 bicubic)`);
  return { resizeShortest, cropSize, mean: mean as PreprocessConfig['mean'], std: std as PreprocessConfig['std'], resample: resample === 3 ? 'bicubic' : 'bilinear' };
}

/** Every tensor the graphs read, with its expected shape. */
export function expectedShapes(c: ClipConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const tower = (prefix: string, t: TowerConfig) => {
    for (let i = 0; i < t.layers; i++) {
      const l = `${prefix}.encoder.layers.${i}`;
      for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
        shapes.set(`${l}.self_attn.${p}.weight`, [t.hidden, t.hidden]);
        shapes.set(`${l}.self_attn.${p}.bias`, [t.hidden]);
      }
      for (const n of ['layer_norm1', 'layer_norm2']) {
        shapes.set(`${l}.${n}.weight`, [t.hidden]);
        shapes.set(`${l}.${n}.bias`, [t.hidden]);
      }
      shapes.set(`${l}.mlp.fc1.weight`, [t.intermediate, t.hidden]);
      shapes.set(`${l}.mlp.fc1.bias`, [t.intermediate]);
      shapes.set(`${l}.mlp.fc2.weight`, [t.hidden, t.intermediate]);
      shapes.set(`${l}.mlp.fc2.bias`, [t.hidden]);
    }
  };
  const v = c.vision;
  const grid = v.imageSize / v.patchSize;
  tower('vision_model', v);
  shapes.set('vision_model.embeddings.class_embedding', [v.hidden]);
  shapes.set('vision_model.embeddings.patch_embedding.weight', [v.hidden, 3, v.patchSize, v.patchSize]);
  shapes.set('vision_model.embeddings.position_embedding.weight', [grid * grid + 1, v.hidden]);
  for (const n of ['pre_layrnorm', 'post_layernorm']) {
    shapes.set(`vision_model.${n}.weight`, [v.hidden]);
    shapes.set(`vision_model.${n}.bias`, [v.hidden]);
  }
  shapes.set('visual_projection.weight', [c.projectionDim, v.hidden]);
  const t = c.text;
  tower('text_model', t);
  shapes.set('text_model.embeddings.token_embedding.weight', [t.vocabSize, t.hidden]);
  shapes.set('text_model.embeddings.position_embedding.weight', [t.contextLength, t.hidden]);
  shapes.set('text_model.final_layer_norm.weight', [t.hidden]);
  shapes.set('text_model.final_layer_norm.bias', [t.hidden]);
  shapes.set('text_projection.weight', [c.projectionDim, t.hidden]);
  return shapes;
}

function readJson(path: string, what: string): Json {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (e) {
    throw new CheckpointError(`${what}: cannot parse ${path}: ${(e as Error).message}`);
  }
}

/** vocab.json + merges.txt, else tokenizer.json. Returns null when the folder has neither. */
export function readTokenizerFiles(dir: string): { vocab: Record<string, number>; merges: string[] } | null {
  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  if (existsSync(vocabPath) && existsSync(mergesPath)) {
    return { vocab: readJson(vocabPath, 'tokenizer') as Record<string, number>, merges: parseMerges(readFileSync(mergesPath, 'utf8')) };
  }
  const tokPath = join(dir, 'tokenizer.json');
  if (existsSync(tokPath)) {
    const model = readJson(tokPath, 'tokenizer').model as Json | undefined;
    if (!model || model.type !== 'BPE' || typeof model.vocab !== 'object') throw new CheckpointError('tokenizer.json: expected a BPE model with vocab and merges');
    const merges = (model.merges as (string | [string, string])[]).map((m) => (Array.isArray(m) ? m.join(' ') : m));
    return { vocab: model.vocab as Record<string, number>, merges };
  }
  return null;
}

export function loadCheckpoint(dir: string, fallbackTokenizer?: () => { vocab: Record<string, number>; merges: string[] }): Checkpoint {
  if (!existsSync(dir)) throw new CheckpointError(`checkpoint folder ${dir} does not exist`);
  for (const f of ['config.json', 'model.safetensors']) {
    if (!existsSync(join(dir, f))) throw new CheckpointError(`checkpoint folder ${dir} has no ${f}`);
  }
  const config = parseConfig(readJson(join(dir, 'config.json'), 'config'));
  const ppPath = join(dir, 'preprocessor_config.json');
  const preprocess = parsePreprocess(existsSync(ppPath) ? readJson(ppPath, 'preprocessor') : {}, config.vision.imageSize);
  let file;
  try {
    file = readSafetensors(readFileSync(join(dir, 'model.safetensors')));
  } catch (e) {
    throw new CheckpointError(`model.safetensors: ${(e as Error).message}`);
  }
  const problems: string[] = [];
  const expected = expectedShapes(config);
  for (const [name, shape] of expected) {
    const t = file.tensors.get(name);
    if (!t) problems.push(file.dtypes.has(name) ? `${name} has unsupported dtype ${file.dtypes.get(name)}` : `${name} is missing`);
    else if (t.shape.join('x') !== shape.join('x')) problems.push(`${name} has shape [${t.shape}] but config implies [${shape}]`);
  }
  if (problems.length) {
    const more = problems.length > 8 ? ` (and ${problems.length - 8} more)` : '';
    throw new CheckpointError(`model.safetensors does not match config.json: ${problems.slice(0, 8).join('; ')}${more}`);
  }
  const dtypes = new Set([...expected.keys()].map((n) => file.dtypes.get(n)!));
  const tokenizer = readTokenizerFiles(dir) ?? fallbackTokenizer?.();
  if (!tokenizer) throw new CheckpointError(`checkpoint folder ${dir} has no tokenizer files (vocab.json + merges.txt, or tokenizer.json)`);
  return { dir, config, preprocess, weights: file.tensors, sourceDtype: [...dtypes].join('+'), tokenizer };
}
