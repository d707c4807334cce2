// Builds the ONNX graphs of a CLIP checkpoint, tensor by tensor:
//  - image encoder: image_embeds (HF get_image_features), patch_embeds (every final
//    patch token through post_layernorm + visual_projection, CLS dropped), and
//    csa_patch_embeds (the same with the last block's attention replaced by SCLIP's
//    Correlative Self-Attention, Wang et al. ECCV 2024, Eq. 5), naclip_patch_embeds (NACLIP,
//    Hajimiri et al. WACV 2025: key-key attention plus a Gaussian of the patch distance, Eq. 5-7,
//    and the last block without residual or MLP) and clearclip_patch_embeds (ClearCLIP, Lan et al.
//    ECCV 2024: query-query attention, the last block without residual or MLP);
//  - text encoder: text_embeds (HF get_text_features, causal mask, EOT pooling).
import { NACLIP_SIGMA } from '../core/encoders.js';
import type { Checkpoint, TowerConfig } from './checkpoint.js';
import { GraphBuilder, type LinearMode } from '../core/onnx/graph-builder.js';
import { DataType } from '../core/onnx/proto.js';

function weight(ck: Checkpoint, name: string): Float32Array {
  const t = ck.weights.get(name);
  if (!t) throw new Error(`checkpoint tensor ${name} is missing`);
  return t.data;
}

type Attention = 'standard' | 'causal' | 'csa' | 'naclip' | 'clearclip';

/** NACLIP's Ω [T,T]: exp(−‖p−q‖² / 2σ²) between patches on the grid, 0 in the CLS row and column. */
function neighbourhood(grid: number): Float32Array {
  const T = grid * grid + 1, out = new Float32Array(T * T);
  for (let i = 1; i < T; i++)
    for (let j = 1; j < T; j++) {
      const dy = Math.floor((i - 1) / grid) - Math.floor((j - 1) / grid), dx = ((i - 1) % grid) - ((j - 1) % grid);
      out[i * T + j] = Math.exp(-(dx * dx + dy * dy) / (2 * NACLIP_SIGMA * NACLIP_SIGMA));
    }
  return out;
}

class TowerBuilder {
  constructor(
    readonly g: GraphBuilder,
    readonly ck: Checkpoint,
    readonly cfg: TowerConfig,
    readonly mode: LinearMode,
  ) {}

  w(name: string): Float32Array {
    return weight(this.ck, name);
  }
  linear(x: string, prefix: string, outDim: number): string {
    return this.g.linear(x, this.w(`${prefix}.weight`), outDim, this.ck.weights.has(`${prefix}.bias`) ? this.w(`${prefix}.bias`) : null, this.mode);
  }
  layerNorm(x: string, prefix: string): string {
    return this.g.layerNorm(x, this.w(`${prefix}.weight`), this.w(`${prefix}.bias`), this.cfg.eps);
  }

  /** [B,T,D] -> [B,H,T,hd] */
  private heads(x: string): string {
    const { heads, hidden } = this.cfg;
    return this.g.op1('Transpose', [this.g.op1('Reshape', [x, this.g.ints([0, 0, heads, hidden / heads])])], { perm: [0, 2, 1, 3] });
  }
  private scaledScores(a: string, b: string, mask: string | null): string {
    const { heads, hidden } = this.cfg;
    const bt = this.g.op1('Transpose', [b], { perm: [0, 1, 3, 2] });
    const s = this.g.op1('Mul', [this.g.op1('MatMul', [a, bt]), this.g.scalar(1 / Math.sqrt(hidden / heads))]);
    return this.g.op1('Softmax', [mask ? this.g.op1('Add', [s, mask]) : s], { axis: -1 });
  }

  attention(x: string, prefix: string, kind: Attention, mask: string | null): string {
    const D = this.cfg.hidden;
    const q = this.heads(this.linear(x, `${prefix}.q_proj`, D));
    const k = this.heads(this.linear(x, `${prefix}.k_proj`, D));
    const v = this.heads(this.linear(x, `${prefix}.v_proj`, D));
    // CSA: A = softmax(s·QQᵀ) + softmax(s·KKᵀ); NACLIP: softmax(s·KKᵀ + Ω); ClearCLIP: softmax(s·QQᵀ);
    // all with the pretrained projections. `mask` is the causal mask, or NACLIP's Ω.
    const attn =
      kind === 'csa' ? this.g.op1('Add', [this.scaledScores(q, q, null), this.scaledScores(k, k, null)])
      : kind === 'naclip' ? this.scaledScores(k, k, mask)
      : kind === 'clearclip' ? this.scaledScores(q, q, null)
      : this.scaledScores(q, k, kind === 'causal' ? mask : null);
    const merged = this.g.op1('Reshape', [this.g.op1('Transpose', [this.g.op1('MatMul', [attn, v])], { perm: [0, 2, 1, 3] }), this.g.ints([0, 0, D])]);
    return this.linear(merged, `${prefix}.out_proj`, D);
  }

  block(x: string, prefix: string, kind: Attention, mask: string | null = null): string {
    // NACLIP and ClearCLIP keep only the attention of the block: no residual, no MLP.
    if (kind === 'naclip' || kind === 'clearclip') return this.attention(this.layerNorm(x, `${prefix}.layer_norm1`), `${prefix}.self_attn`, kind, mask);
    const h = this.g.op1('Add', [x, this.attention(this.layerNorm(x, `${prefix}.layer_norm1`), `${prefix}.self_attn`, kind, mask)]);
    const fc1 = this.g.activation(this.linear(this.layerNorm(h, `${prefix}.layer_norm2`), `${prefix}.mlp.fc1`, this.cfg.intermediate), this.cfg.act);
    return this.g.op1('Add', [h, this.linear(fc1, `${prefix}.mlp.fc2`, this.cfg.hidden)]);
  }
}

export function buildImageEncoder(ck: Checkpoint, mode: LinearMode): GraphBuilder {
  const v = ck.config.vision;
  const S = v.imageSize, P = v.patchSize, G = S / P, N = G * G, D = v.hidden, E = ck.config.projectionDim;
  const g = new GraphBuilder('nameonly_image_encoder');
  const t = new TowerBuilder(g, ck, v, mode);
  const pixels = g.input('pixel_values', DataType.FLOAT, ['batch', 3, S, S]);

  const conv = g.op1('Conv', [pixels, g.float('patch_w', [D, 3, P, P], t.w('vision_model.embeddings.patch_embedding.weight'))], { kernel_shape: [P, P], strides: [P, P] });
  const patches = g.op1('Transpose', [g.op1('Reshape', [conv, g.ints([0, D, N])])], { perm: [0, 2, 1] });
  const batch = g.op1('Slice', [g.op1('Shape', [pixels]), g.ints([0]), g.ints([1])]);
  const cls = g.op1('Expand', [g.float('cls', [1, 1, D], t.w('vision_model.embeddings.class_embedding')), g.op1('Concat', [batch, g.ints([1, D])], { axis: 0 })]);
  let x = g.op1('Concat', [cls, patches], { axis: 1 });
  x = g.op1('Add', [x, g.float('pos', [N + 1, D], t.w('vision_model.embeddings.position_embedding.weight'))]);
  x = t.layerNorm(x, 'vision_model.pre_layrnorm');
  for (let l = 0; l < v.layers - 1; l++) x = t.block(x, `vision_model.encoder.layers.${l}`, 'standard');

  const last = `vision_model.encoder.layers.${v.layers - 1}`;
  const project = (h: string) => t.linear(t.layerNorm(h, 'vision_model.post_layernorm'), 'visual_projection', E);
  const dropCls = (h: string) => g.op1('Slice', [h, g.ints([1]), g.ints([N + 1]), g.ints([1])]);
  const embeds = project(t.block(x, last, 'standard'));
  g.output(g.op1('Gather', [embeds, g.tensor('zero', DataType.INT64, [], BigInt64Array.of(0n))], { axis: 1 }), 'image_embeds', ['batch', E]);
  g.output(dropCls(embeds), 'patch_embeds', ['batch', N, E]);
  // The CSA branch shares everything up to the last block: one graph, one extra block.
  g.output(project(dropCls(t.block(x, last, 'csa'))), 'csa_patch_embeds', ['batch', N, E]);
  g.output(project(dropCls(t.block(x, last, 'naclip', g.float('naclip_omega', [N + 1, N + 1], neighbourhood(G))))), 'naclip_patch_embeds', ['batch', N, E]);
  g.output(project(dropCls(t.block(x, last, 'clearclip'))), 'clearclip_patch_embeds', ['batch', N, E]);
  return g;
}

export function buildTextEncoder(ck: Checkpoint): GraphBuilder {
  const tc = ck.config.text;
  const T = tc.contextLength, D = tc.hidden, E = ck.config.projectionDim;
  const g = new GraphBuilder('nameonly_text_encoder');
  const t = new TowerBuilder(g, ck, tc, 'fp32');
  const ids = g.input('input_ids', DataType.INT64, ['batch', T]);

  let x = g.op1('Gather', [g.float('tok', [tc.vocabSize, D], t.w('text_model.embeddings.token_embedding.weight')), ids], { axis: 0 });
  x = g.op1('Add', [x, g.float('pos', [T, D], t.w('text_model.embeddings.position_embedding.weight'))]);
  const mask = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
  const maskName = g.float('causal_mask', [T, T], mask);
  for (let l = 0; l < tc.layers; l++) x = t.block(x, `text_model.encoder.layers.${l}`, 'causal', maskName);

  // EOT pooling as HF: legacy configs (eos_token_id == 2) take argmax(ids), others the first eos id.
  const idsF = g.op1('Cast', [ids], { to: DataType.FLOAT });
  const key = tc.eosTokenId === 2 ? idsF : g.op1('Cast', [g.op1('Equal', [ids, g.tensor('eos', DataType.INT64, [], BigInt64Array.of(BigInt(tc.eosTokenId)))])], { to: DataType.FLOAT });
  const eot = g.op1('ArgMax', [key], { axis: 1, keepdims: 0 });
  const int64 = (n: number) => g.tensor('i', DataType.INT64, [], BigInt64Array.of(BigInt(n)));
  const batch = g.op1('Gather', [g.op1('Shape', [ids]), int64(0)], { axis: 0 });
  const rows = g.op1('Mul', [g.op1('Range', [int64(0), batch, int64(1)]), int64(T)]);
  const pooled = g.op1('Gather', [g.op1('Reshape', [x, g.ints([-1, D])]), g.op1('Add', [rows, eot])], { axis: 0 });
  g.output(t.linear(t.layerNorm(pooled, 'text_model.final_layer_norm'), 'text_projection', E), 'text_embeds', ['batch', E]);
  return g;
}
