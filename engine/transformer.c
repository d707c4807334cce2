// Pre-LN transformer blocks on the int8 kernels, shared by the image tower (clip_vit.c) and
// the text tower (clip_text.c). Numerics: weights int8 per output channel, activations 7-bit
// per row with a zero point, int32 accumulation; LayerNorm, softmax, GELU and attention in f32.
#include "transformer.h"

extern unsigned char __heap_base;
static uintptr_t heap_top;

uint64_t align16(uint64_t n) { return (n + 15) & ~(uint64_t)15; }

void* bump(uint32_t bytes) {
  if (!heap_top) heap_top = align16((uintptr_t)&__heap_base);
  uint64_t end = (uint64_t)heap_top + align16(bytes);
  uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) << 16;
  if (end > have) {
    uint64_t pages = (end - have + 65535) >> 16;
    if (end > 0xFFFF0000u || __builtin_wasm_memory_grow(0, pages) == (unsigned long)-1) return 0;
  }
  void* p = (void*)heap_top;
  heap_top = end;
  return p;
}

uint8_t* reserve_tower(uint64_t need, uint64_t state, uint32_t declared, uint32_t bytes, uint8_t** state_at, int* error) {
  if (need != declared || need != bytes) { *error = E_SIZE; return 0; }
  if (need + state > 0xC0000000u) { *error = E_MEMORY; return 0; }
  uint8_t* blob = bump((uint32_t)need);
  *state_at = blob ? bump((uint32_t)state) : 0;
  if (!*state_at) { *error = E_MEMORY; return 0; }
  return blob;
}

// ---------------------------------------------------------------------------------
// The blob layout, shared by the size computation and the mapping (one walk, two uses).

uint64_t floats_bytes(uint64_t n) { return align16(4 * n); }
uint64_t qlinear_bytes(int out, int in) { return align16((uint64_t)out * in) + 3 * align16(4 * (uint64_t)out); }
uint64_t layer_bytes(int D, int I) { return 4 * floats_bytes(D) + 4 * qlinear_bytes(D, D) + qlinear_bytes(I, D) + qlinear_bytes(D, I); }

const float* take_floats(const uint8_t** cursor, uint64_t n) {
  const float* p = (const float*)*cursor;
  *cursor += floats_bytes(n);
  return p;
}

QLinear take_qlinear(const uint8_t** cursor, int out, int in) {
  QLinear l = { .out = out, .in = in };
  l.w = (const int8_t*)*cursor;
  *cursor += align16((uint64_t)out * in);
  l.scale = take_floats(cursor, out);
  l.bias = take_floats(cursor, out);
  l.wsum = (const int32_t*)take_floats(cursor, out);
  return l;
}

Layer take_layer(const uint8_t** cursor, int D, int I) {
  Layer L;
  L.ln1_g = take_floats(cursor, D);
  L.ln1_b = take_floats(cursor, D);
  L.q = take_qlinear(cursor, D, D);
  L.k = take_qlinear(cursor, D, D);
  L.v = take_qlinear(cursor, D, D);
  L.o = take_qlinear(cursor, D, D);
  L.ln2_g = take_floats(cursor, D);
  L.ln2_b = take_floats(cursor, D);
  L.fc1 = take_qlinear(cursor, I, D);
  L.fc2 = take_qlinear(cursor, D, I);
  return L;
}

// ---------------------------------------------------------------------------------
// Building blocks

void add_into(float* x, const float* y, int n) {
  for (int i = 0; i < n; i++) x[i] += y[i];
}

void layernorm(const Stack* s, float* out, const float* x, const float* g, const float* b, int rows) {
  int n = s->dim;
  for (int r = 0; r < rows; r++) {
    const float* xr = x + (long)r * n;
    float* o = out + (long)r * n;
    float mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += xr[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (xr[i] - mean) * (xr[i] - mean);
    float inv = 1 / sqrt_f32(var / n + s->eps);
    for (int i = 0; i < n; i++) o[i] = (xr[i] - mean) * inv * g[i] + b[i];
  }
}

void linear(const Stack* s, float* out, const float* x, const QLinear* l, int rows) {
  for (int r = 0; r < rows; r++) s->xs[r] = quantize_row(s->xq + (long)r * l->in, &s->xz[r], x + (long)r * l->in, l->in);
  qmatmul(out, s->xq, s->xs, s->xz, rows, l->w, l->scale, l->bias, l->wsum, l->out, l->in);
}

// The same quantised input (s->xq, from the last `linear`) through another layer.
static void linear_again(const Stack* s, float* out, const QLinear* l, int rows) {
  qmatmul(out, s->xq, s->xs, s->xz, rows, l->w, l->scale, l->bias, l->wsum, l->out, l->in);
}

// att[i, j] = softmax_j(scale * a_i . b_j + bias[i, j]) over one head's slice of T rows of a and
// b; with `causal`, only j <= i (the text tower's mask).
static void scores(const Stack* s, float* att, const float* a, const float* b, int T, int h, const float* bias, int causal) {
  int D = s->dim, hd = s->head_dim;
  gemm_abt_f32(att, T, a + h * hd, D, T, b + h * hd, D, T, hd);
  float scale = 1 / sqrt_f32((float)hd);
  for (long i = 0; i < (long)T * T; i++) att[i] = att[i] * scale + (bias ? bias[i] : 0);
  for (int i = 0; i < T; i++) {
    float* row = att + (long)i * T;
    int n = causal ? i + 1 : T;
    softmax_f32(row, n);
    for (int j = n; j < T; j++) row[j] = 0;
  }
}

// out[T, dim] = per head A v, A of the attention `kind`: softmax(QK^T) (causal for the text
// tower, within each of its segments); CSA's softmax(QQ^T) + softmax(KK^T); NACLIP's
// softmax(KK^T + Omega); ClearCLIP's softmax(QQ^T).
static void attention(const Stack* s, float* out, int kind) {
  int D = s->dim, hd = s->head_dim, one = s->T;
  int n = s->n_segments ? s->n_segments : 1;
  const int32_t* rows = s->n_segments ? s->segment_rows : &one;
  for (int g = 0, off = 0; g < n; off += rows[g++]) {
    int T = rows[g];
    const float *q = s->q + (long)off * D, *k = s->k + (long)off * D, *v = s->v + (long)off * D;
    for (int h = 0; h < s->n_heads; h++) {
      if (kind == ATT_CSA) {
        scores(s, s->att, q, q, T, h, 0, 0);
        scores(s, s->att2, k, k, T, h, 0, 0);
        add_into(s->att, s->att2, T * T);
      } else if (kind == ATT_NACLIP) {
        scores(s, s->att, k, k, T, h, s->omega, 0);
      } else if (kind == ATT_CLEARCLIP) {
        scores(s, s->att, q, q, T, h, 0, 0);
      } else {
        scores(s, s->att, q, k, T, h, 0, kind == ATT_CAUSAL);
      }
      gemm_ab_f32(out + (long)off * D + h * hd, D, s->att, T, T, v + h * hd, D, T, hd);
    }
  }
}

// out <- out_proj(attention(LN1(x))): the residual added by the full block, not here.
static void attend(const Stack* s, const Layer* L, float* out, int kind) {
  int T = s->T;
  layernorm(s, s->xb, s->x, L->ln1_g, L->ln1_b, T);
  // q, k and v share one quantisation of their input.
  linear(s, s->q, s->xb, &L->q, T);
  linear_again(s, s->k, &L->k, T);
  linear_again(s, s->v, &L->v, T);
  attention(s, s->xb, kind);
  linear(s, out, s->xb, &L->o, T);
}

void block(const Stack* s, const Layer* L, int kind) {
  int T = s->T, D = s->dim, I = s->hidden_dim;
  // NACLIP and ClearCLIP keep only the attention of the last block: no residual, no MLP.
  if (kind == ATT_NACLIP || kind == ATT_CLEARCLIP) {
    attend(s, L, s->hb, kind);
    memcpy(s->x, s->hb, sizeof(float) * T * D);
    return;
  }
  attend(s, L, s->hb, kind);
  add_into(s->x, s->hb, T * D);

  layernorm(s, s->xb, s->x, L->ln2_g, L->ln2_b, T);
  linear(s, s->hb, s->xb, &L->fc1, T);
  activation_f32(s->hb, (long)T * I, s->act);
  linear(s, s->xb, s->hb, &L->fc2, T);
  add_into(s->x, s->xb, T * D);
}
