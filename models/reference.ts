// A straightforward TypeScript re-implementation of HF CLIPModel's forward pass, one
// example at a time, float64 accumulation. It is the independent reference the ONNX
// graphs are tested against; it is not used at run time.
import { NACLIP_SIGMA } from '../core/encoders.js';
import type { Activation, Checkpoint, TowerConfig } from './checkpoint.js';

type Mat = Float64Array[]; // rows

function w(ck: Checkpoint, name: string): Float32Array {
  const t = ck.weights.get(name);
  if (!t) throw new Error(`missing ${name}`);
  return t.data;
}

function linear(x: Mat, weight: Float32Array, bias: Float32Array | null, outDim: number): Mat {
  const inDim = x[0]!.length;
  return x.map((row) => {
    const out = new Float64Array(outDim);
    for (let o = 0; o < outDim; o++) {
      let s = bias ? bias[o]! : 0;
      const off = o * inDim;
      for (let i = 0; i < inDim; i++) s += row[i]! * weight[off + i]!;
      out[o] = s;
    }
    return out;
  });
}

function layerNorm(x: Mat, gamma: Float32Array, beta: Float32Array, eps: number): Mat {
  return x.map((row) => {
    const n = row.length;
    let mean = 0;
    for (const v of row) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of row) variance += (v - mean) ** 2;
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    return row.map((v, i) => (v - mean) * inv * gamma[i]! + beta[i]!);
  });
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse for 1e-4 parity; use a series/continued fraction.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t, term = t;
    for (let n = 1; n < 60; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

function act(x: number, a: Activation): number {
  if (a === 'quick_gelu') return x / (1 + Math.exp(-1.702 * x));
  if (a === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function softmaxRows(scores: Mat): Mat {
  return scores.map((row) => {
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

function scoresOf(a: Mat, b: Mat, h: number, hd: number, scale: number, causal: boolean): Mat {
  return a.map((ra, i) => {
    const row = new Float64Array(b.length);
    for (let j = 0; j < b.length; j++) {
      if (causal && j > i) {
        row[j] = -Infinity;
        continue;
      }
      let s = 0;
      for (let d = 0; d < hd; d++) s += ra[h * hd + d]! * b[j]![h * hd + d]!;
      row[j] = s * scale;
    }
    return row;
  });
}

type Kind = 'standard' | 'csa' | 'naclip' | 'clearclip';

/** NACLIP's neighbourhood term: a Gaussian of the distance between two patches on the grid (0 with the CLS token). */
function omega(i: number, j: number, grid: number): number {
  if (i === 0 || j === 0) return 0;
  const dy = Math.floor((i - 1) / grid) - Math.floor((j - 1) / grid), dx = ((i - 1) % grid) - ((j - 1) % grid);
  return Math.exp(-(dx * dx + dy * dy) / (2 * NACLIP_SIGMA * NACLIP_SIGMA));
}

/**
 * Self-attention with the attention of `kind`: softmax(s·qkᵀ); SCLIP's softmax(s·qqᵀ) + softmax(s·kkᵀ);
 * NACLIP's softmax(s·kkᵀ + Ω); ClearCLIP's softmax(s·qqᵀ).
 */
function attention(ck: Checkpoint, prefix: string, x: Mat, t: TowerConfig, causal: boolean, kind: Kind = 'standard', grid = 0): Mat {
  const D = t.hidden, H = t.heads, hd = D / H;
  const proj = (p: string) => linear(x, w(ck, `${prefix}.${p}.weight`), w(ck, `${prefix}.${p}.bias`), D);
  const q = proj('q_proj'), k = proj('k_proj'), v = proj('v_proj');
  const scale = 1 / Math.sqrt(hd);
  const out: Mat = x.map(() => new Float64Array(D));
  for (let h = 0; h < H; h++) {
    let attn: Mat;
    if (kind === 'csa') {
      const aq = softmaxRows(scoresOf(q, q, h, hd, scale, false));
      const ak = softmaxRows(scoresOf(k, k, h, hd, scale, false));
      attn = aq.map((row, i) => row.map((val, j) => val + ak[i]![j]!));
    } else if (kind === 'naclip') {
      attn = softmaxRows(scoresOf(k, k, h, hd, scale, false).map((row, i) => row.map((val, j) => val + omega(i, j, grid))));
    } else if (kind === 'clearclip') {
      attn = softmaxRows(scoresOf(q, q, h, hd, scale, false));
    } else {
      attn = softmaxRows(scoresOf(q, k, h, hd, scale, causal));
    }
    for (let i = 0; i < x.length; i++) {
      for (let j = 0; j < x.length; j++) {
        const a = attn[i]![j]!;
        if (a === 0) continue;
        for (let d = 0; d < hd; d++) out[i]![h * hd + d]! += a * v[j]![h * hd + d]!;
      }
    }
  }
  return linear(out, w(ck, `${prefix}.out_proj.weight`), w(ck, `${prefix}.out_proj.bias`), D);
}

function add(a: Mat, b: Mat): Mat {
  return a.map((row, i) => row.map((v, j) => v + b[i]![j]!));
}

function block(ck: Checkpoint, prefix: string, x: Mat, t: TowerConfig, causal: boolean, kind: Kind = 'standard', grid = 0): Mat {
  const ln1 = layerNorm(x, w(ck, `${prefix}.layer_norm1.weight`), w(ck, `${prefix}.layer_norm1.bias`), t.eps);
  // NACLIP and ClearCLIP keep only the attention of the last block: no residual, no MLP.
  if (kind === 'naclip' || kind === 'clearclip') return attention(ck, `${prefix}.self_attn`, ln1, t, causal, kind, grid);
  const h = add(x, attention(ck, `${prefix}.self_attn`, ln1, t, causal, kind, grid));
  const ln2 = layerNorm(h, w(ck, `${prefix}.layer_norm2.weight`), w(ck, `${prefix}.layer_norm2.bias`), t.eps);
  const fc1 = linear(ln2, w(ck, `${prefix}.mlp.fc1.weight`), w(ck, `${prefix}.mlp.fc1.bias`), t.intermediate).map((r) => r.map((v) => act(v, t.act)));
  return add(h, linear(fc1, w(ck, `${prefix}.mlp.fc2.weight`), w(ck, `${prefix}.mlp.fc2.bias`), t.hidden));
}

export interface VisionOutputs {
  imageEmbeds: Float64Array;
  patchEmbeds: Mat;
  csaPatchEmbeds: Mat;
  naclipPatchEmbeds: Mat;
  clearclipPatchEmbeds: Mat;
}

/** pixels: [3,S,S] channel-major, already normalised. */
export function referenceVision(ck: Checkpoint, pixels: Float32Array): VisionOutputs {
  const v = ck.config.vision;
  const S = v.imageSize, P = v.patchSize, G = S / P, D = v.hidden;
  const patchW = w(ck, 'vision_model.embeddings.patch_embedding.weight');
  const pos = w(ck, 'vision_model.embeddings.position_embedding.weight');
  const cls = w(ck, 'vision_model.embeddings.class_embedding');
  const tokens: Mat = [Float64Array.from(cls)];
  for (let gy = 0; gy < G; gy++) {
    for (let gx = 0; gx < G; gx++) {
      const tok = new Float64Array(D);
      for (let o = 0; o < D; o++) {
        let s = 0;
        for (let c = 0; c < 3; c++)
          for (let y = 0; y < P; y++)
            for (let x = 0; x < P; x++) s += patchW[((o * 3 + c) * P + y) * P + x]! * pixels[(c * S + gy * P + y) * S + gx * P + x]!;
        tok[o] = s;
      }
      tokens.push(tok);
    }
  }
  let x: Mat = tokens.map((row, i) => row.map((val, d) => val + pos[i * D + d]!));
  x = layerNorm(x, w(ck, 'vision_model.pre_layrnorm.weight'), w(ck, 'vision_model.pre_layrnorm.bias'), v.eps);
  for (let l = 0; l < v.layers - 1; l++) x = block(ck, `vision_model.encoder.layers.${l}`, x, v, false);
  const last = `vision_model.encoder.layers.${v.layers - 1}`;
  const finish = (h: Mat) =>
    linear(layerNorm(h, w(ck, 'vision_model.post_layernorm.weight'), w(ck, 'vision_model.post_layernorm.bias'), v.eps), w(ck, 'visual_projection.weight'), null, ck.config.projectionDim);
  const out = finish(block(ck, last, x, v, false));
  const variant = (kind: Kind) => finish(block(ck, last, x, v, false, kind, G)).slice(1);
  return { imageEmbeds: out[0]!, patchEmbeds: out.slice(1), csaPatchEmbeds: variant('csa'), naclipPatchEmbeds: variant('naclip'), clearclipPatchEmbeds: variant('clearclip') };
}

/** ids: one row of `contextLength` token ids. */
export function referenceText(ck: Checkpoint, ids: ArrayLike<number>): Float64Array {
  const t = ck.config.text;
  const D = t.hidden;
  const tok = w(ck, 'text_model.embeddings.token_embedding.weight');
  const pos = w(ck, 'text_model.embeddings.position_embedding.weight');
  let x: Mat = Array.from(ids, (id, i) => {
    const row = new Float64Array(D);
    for (let d = 0; d < D; d++) row[d] = tok[id * D + d]! + pos[i * D + d]!;
    return row;
  });
  for (let l = 0; l < t.layers; l++) x = block(ck, `text_model.encoder.layers.${l}`, x, t, true);
  x = layerNorm(x, w(ck, 'text_model.final_layer_norm.weight'), w(ck, 'text_model.final_layer_norm.bias'), t.eps);
  // HF pooling: legacy configs (eos_token_id == 2) take argmax(ids); others the first eos.
  const arr = Array.from(ids);
  const at = t.eosTokenId === 2 ? arr.indexOf(Math.max(...arr)) : Math.max(0, arr.indexOf(t.eosTokenId));
  return linear([x[at]!], w(ck, 'text_projection.weight'), null, ck.config.projectionDim)[0]!;
}
