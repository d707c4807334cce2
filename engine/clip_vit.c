// The CLIP ViT image tower as a small int8 engine for WebAssembly, in the manner of
// llama2.c's run.c: a config, weights as pointers into one blob, run-state buffers,
// and a forward pass readable top to bottom. Kernels are in kernels.c.
//
// Outputs, as image_encoder.onnx: image_embeds (HF get_image_features), patch_embeds
// (every final patch token through post-LN and the projection), and the patch tokens of
// three training-free last blocks, sharing everything before the last block:
//  - csa_patch_embeds: SCLIP (Wang et al. ECCV 2024, Eq. 5), softmax(s QQ^T) + softmax(s KK^T)
//    with the pretrained projections, residual and MLP kept;
//  - naclip_patch_embeds: NACLIP (Hajimiri et al. WACV 2025, Eq. 5-7), softmax(s KK^T + Omega),
//    Omega a Gaussian (sigma 5 patches) of the distance between patches, and the block reduced
//    to its attention: no residual, no MLP;
//  - clearclip_patch_embeds: ClearCLIP (Lan et al. ECCV 2024), softmax(s QQ^T), the block
//    reduced the same way.
//
// Numerics: weights int8 per output channel, activations 7-bit per row with a zero point,
// int32 accumulation; LayerNorm, softmax, GELU and attention in f32.
#include "transformer.h"

#define MAGIC 0x45564F4E  // "NOVE" little-endian: nameonly vit engine
#define VERSION 1
#define HEADER_BYTES 256
#define MAX_LAYERS 64

enum { ACT_QUICK_GELU = 0, ACT_GELU = 1, ACT_GELU_TANH = 2 };
enum { OUT_IMAGE = 1, OUT_PATCHES = 2, OUT_CSA = 4, OUT_NACLIP = 8, OUT_CLEARCLIP = 16 };
#define NACLIP_SIGMA 5.0f  // the official default gaussian_std, in patches

typedef struct {
  int magic, version;
  int image_size, patch_size;
  int dim, hidden_dim, n_heads, n_layers, embed_dim, act;
  float eps;
  uint32_t blob_bytes;
} Header;  // the first words of the blob's 256-byte header

typedef struct {
  int image_size, patch_size, dim, hidden_dim, n_heads, n_layers, embed_dim, act;
  float eps;
  int grid, n_patches, seq_len, patch_dim, head_dim;
} Config;

typedef struct {
  QLinear patch;         // conv weight [dim, 3*P*P] in (c, y, x) order
  const float* cls;      // [dim]
  const float* pos;      // [seq_len, dim]
  const float *pre_g, *pre_b;
  Layer layers[MAX_LAYERS];
  const float *post_g, *post_b;
  QLinear proj;          // [embed_dim, dim], no bias
} Weights;

typedef struct {
  Stack st;              // the transformer's buffers (transformer.h), T = seq_len
  float* pixels;         // [3, S, S] input, normalised
  float* xsave;          // [T, dim] input of the last block
  float* omega;          // [T, T] NACLIP's neighbourhood term, computed once
  float *emb, *csa_emb;  // [T, embed_dim]: row 0 image_embeds, rows 1.. patch_embeds
  float *naclip_emb, *clearclip_emb;
} RunState;

static Header header_in;  // filled by the host before engine_reserve
static Config c;
static Weights w;
static RunState s;
static uint8_t* blob;
static uint32_t blob_size, state_size;
static int reserved, ready;

// ---------------------------------------------------------------------------------
// The blob layout, shared by the size computation and the mapping (one walk, two uses).

static uint64_t layout_bytes(const Config* p) {
  uint64_t D = p->dim;
  return HEADER_BYTES + qlinear_bytes(D, p->patch_dim) + floats_bytes(D) + floats_bytes((uint64_t)p->seq_len * D) + 2 * floats_bytes(D) +
         p->n_layers * layer_bytes(p->dim, p->hidden_dim) + 2 * floats_bytes(D) + qlinear_bytes(p->embed_dim, D);
}

static const uint8_t* cursor;

static void map_weights(void) {
  int D = c.dim;
  cursor = blob + HEADER_BYTES;
  w.patch = take_qlinear(&cursor, D, c.patch_dim);
  w.cls = take_floats(&cursor, D);
  w.pos = take_floats(&cursor, (uint64_t)c.seq_len * D);
  w.pre_g = take_floats(&cursor, D);
  w.pre_b = take_floats(&cursor, D);
  for (int l = 0; l < c.n_layers; l++) w.layers[l] = take_layer(&cursor, D, c.hidden_dim);
  w.post_g = take_floats(&cursor, D);
  w.post_b = take_floats(&cursor, D);
  w.proj = take_qlinear(&cursor, c.embed_dim, D);
}

// Elements of the widest product input: an MLP hidden layer or the flattened patches.
static uint64_t widest(const Config* p) {
  uint64_t H = p->hidden_dim > p->dim ? p->hidden_dim : p->dim;
  uint64_t mlp = (uint64_t)p->seq_len * H, patches = (uint64_t)p->n_patches * p->patch_dim;
  return mlp > patches ? mlp : patches;
}

static uint64_t state_bytes(const Config* p) {
  uint64_t T = p->seq_len, D = p->dim;
  return floats_bytes(3ull * p->image_size * p->image_size) + 6 * floats_bytes(T * D) + 3 * floats_bytes(T * T) + floats_bytes(widest(p)) + align16(widest(p)) +
         2 * floats_bytes(T) + 4 * floats_bytes(T * p->embed_dim);
}

// ---------------------------------------------------------------------------------
// Set-up: the host writes the header, reserves (one grow), streams the blob, then inits.

static int read_config(const Header* h, Config* p) {
  if (h->magic != MAGIC) return E_MAGIC;
  if (h->version != VERSION) return E_VERSION;
  p->image_size = h->image_size; p->patch_size = h->patch_size; p->dim = h->dim; p->hidden_dim = h->hidden_dim;
  p->n_heads = h->n_heads; p->n_layers = h->n_layers; p->embed_dim = h->embed_dim; p->act = h->act; p->eps = h->eps;
  if (p->image_size < 1 || p->image_size > 1024 || p->patch_size < 1 || p->image_size % p->patch_size) return E_CONFIG;
  if (p->dim < 1 || p->dim > 4096 || p->hidden_dim < 1 || p->hidden_dim > 16384 || p->embed_dim < 1 || p->embed_dim > 4096) return E_CONFIG;
  if (p->n_heads < 1 || p->dim % p->n_heads || p->n_layers < 1 || p->n_layers > MAX_LAYERS) return E_CONFIG;
  if (p->act < ACT_QUICK_GELU || p->act > ACT_GELU_TANH || !(p->eps > 0 && p->eps < 1)) return E_CONFIG;
  p->grid = p->image_size / p->patch_size;
  p->n_patches = p->grid * p->grid;
  p->seq_len = p->n_patches + 1;
  p->patch_dim = 3 * p->patch_size * p->patch_size;
  p->head_dim = p->dim / p->n_heads;
  if (p->seq_len > 4097) return E_CONFIG;
  return OK;
}

__attribute__((export_name("engine_header"))) void* engine_header(void) { return &header_in; }

// Validates the header, grows the memory once for blob + run state, returns where the
// blob goes (0 on error; engine_error says why).
static int last_error;
__attribute__((export_name("engine_error"))) int engine_error(void) { return last_error; }

__attribute__((export_name("engine_reserve"))) void* engine_reserve(uint32_t bytes) {
  if (reserved) { last_error = E_STATE; return 0; }
  if ((last_error = read_config(&header_in, &c))) return 0;
  uint64_t need = layout_bytes(&c), state = state_bytes(&c);
  uint8_t* p;
  if (!(blob = reserve_tower(need, state, header_in.blob_bytes, bytes, &p, &last_error))) return 0;
  blob_size = (uint32_t)need;
  state_size = (uint32_t)state;
  int T = c.seq_len, D = c.dim;
  Stack* t = &s.st;
#define CARVE(field, type, count) (field = (type*)p, p += align16(sizeof(type) * (uint64_t)(count)))
  CARVE(s.pixels, float, 3 * c.image_size * c.image_size);
  CARVE(t->x, float, T * D); CARVE(t->xb, float, T * D); CARVE(s.xsave, float, T * D);
  CARVE(t->q, float, T * D); CARVE(t->k, float, T * D); CARVE(t->v, float, T * D);
  CARVE(t->att, float, T * T); CARVE(t->att2, float, T * T); CARVE(s.omega, float, T * T);
  CARVE(t->hb, float, widest(&c));
  CARVE(t->xq, uint8_t, widest(&c));
  CARVE(t->xs, float, T); CARVE(t->xz, int32_t, T);
  CARVE(s.emb, float, T * c.embed_dim); CARVE(s.csa_emb, float, T * c.embed_dim);
  CARVE(s.naclip_emb, float, T * c.embed_dim); CARVE(s.clearclip_emb, float, T * c.embed_dim);
#undef CARVE
  t->T = T; t->dim = D; t->hidden_dim = c.hidden_dim; t->n_heads = c.n_heads; t->head_dim = c.head_dim;
  t->act = c.act; t->eps = c.eps; t->omega = s.omega;
  reserved = 1;
  return blob;
}

// After the blob is in place: its header must be the one reserved for.
__attribute__((export_name("engine_init"))) int engine_init(void) {
  if (!reserved) return last_error = E_STATE;
  const uint8_t* a = (const uint8_t*)&header_in;
  for (unsigned i = 0; i < sizeof(Header); i++) if (blob[i] != a[i]) return last_error = E_STATE;
  map_weights();
  if ((uint64_t)(cursor - blob) != blob_size) return last_error = E_SIZE;
  // Omega[i, j] = exp(-|p_i - p_j|^2 / 2 sigma^2) between patches; 0 with the CLS token.
  int T = c.seq_len, G = c.grid;
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) {
      float dy = (float)((i - 1) / G - (j - 1) / G), dx = (float)((i - 1) % G - (j - 1) % G);
      s.omega[(long)i * T + j] = i && j ? exp_f32(-(dx * dx + dy * dy) / (2 * NACLIP_SIGMA * NACLIP_SIGMA)) : 0;
    }
  ready = 1;
  return OK;
}

// post_layernorm + visual_projection of the first `rows` tokens.
static void finish(float* emb, int rows) {
  layernorm(&s.st, s.st.xb, s.st.x, w.post_g, w.post_b, rows);
  linear(&s.st, emb, s.st.xb, &w.proj, rows);
}

// ---------------------------------------------------------------------------------
// The forward pass. `outputs`: OUT_IMAGE | OUT_PATCHES | OUT_CSA | OUT_NACLIP | OUT_CLEARCLIP.

__attribute__((export_name("engine_forward"))) int engine_forward(int outputs) {
  if (!ready) return last_error = E_STATE;
  int S = c.image_size, P = c.patch_size, G = c.grid, D = c.dim, T = c.seq_len;

  const Stack* st = &s.st;
  float* x = st->x;

  // Patch embedding: a stride-P convolution is one product over the flattened patches.
  for (int gy = 0; gy < G; gy++)
    for (int gx = 0; gx < G; gx++) {
      float* patch = st->hb + (long)(gy * G + gx) * c.patch_dim;
      for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < P; y++) memcpy(patch + (ch * P + y) * P, s.pixels + ((long)ch * S + gy * P + y) * S + gx * P, sizeof(float) * P);
    }
  linear(st, x + D, st->hb, &w.patch, c.n_patches);
  memcpy(x, w.cls, sizeof(float) * D);
  add_into(x, w.pos, T * D);
  layernorm(st, x, x, w.pre_g, w.pre_b, T);

  for (int l = 0; l < c.n_layers - 1; l++) block(st, &w.layers[l], ATT_STANDARD);

  // The last block once per requested variant, each from the same saved input.
  const Layer* last = &w.layers[c.n_layers - 1];
  struct { int wanted, kind; float* emb; int rows; } passes[] = {
    { outputs & (OUT_IMAGE | OUT_PATCHES), ATT_STANDARD, s.emb, outputs & OUT_PATCHES ? T : 1 },
    { outputs & OUT_CSA, ATT_CSA, s.csa_emb, T },
    { outputs & OUT_NACLIP, ATT_NACLIP, s.naclip_emb, T },
    { outputs & OUT_CLEARCLIP, ATT_CLEARCLIP, s.clearclip_emb, T },
  };
  int done = 0;
  memcpy(s.xsave, x, sizeof(float) * T * D);
  for (int i = 0; i < 4; i++) {
    if (!passes[i].wanted) continue;
    if (done++) memcpy(x, s.xsave, sizeof(float) * T * D);
    block(st, last, passes[i].kind);
    finish(passes[i].emb, passes[i].rows);
  }
  return OK;
}

// ---------------------------------------------------------------------------------
// What the host reads and writes.

__attribute__((export_name("engine_pixels"))) float* engine_pixels(void) { return s.pixels; }
__attribute__((export_name("engine_image_embeds"))) float* engine_image_embeds(void) { return s.emb; }
__attribute__((export_name("engine_patch_embeds"))) float* engine_patch_embeds(void) { return s.emb + c.embed_dim; }
__attribute__((export_name("engine_csa_patch_embeds"))) float* engine_csa_patch_embeds(void) { return s.csa_emb + c.embed_dim; }
__attribute__((export_name("engine_naclip_patch_embeds"))) float* engine_naclip_patch_embeds(void) { return s.naclip_emb + c.embed_dim; }
__attribute__((export_name("engine_clearclip_patch_embeds"))) float* engine_clearclip_patch_embeds(void) { return s.clearclip_emb + c.embed_dim; }
__attribute__((export_name("engine_state_bytes"))) uint32_t engine_state_bytes(void) { return state_size; }

// The start-up probe: 1 when this module's int8 dot product equals plain integer
// arithmetic here, on the extremes of the operand ranges the engine uses.
__attribute__((export_name("engine_probe"))) int engine_probe(void) {
  static int8_t pw[64];
  static uint8_t px[64];
  static const int8_t wv[] = { -127, 127, -127, -1 };
  static const uint8_t xv[] = { QMAX, QMAX, 0, 1 };
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      int32_t expect = 0;
      for (int i = 0; i < 64; i++) {
        pw[i] = (i & 1) ? wv[a] : wv[(a + b) & 3];
        px[i] = (i & 2) ? xv[b] : xv[(a + 3 * b) & 3];
        expect += (int32_t)pw[i] * (int32_t)px[i];
      }
      if (qdot(px, pw, 64) != expect) return 0;
    }
  return 1;
}

// For the kernel tests: scratch memory and the kernels themselves.
__attribute__((export_name("engine_scratch"))) void* engine_scratch(uint32_t bytes) { return bump(bytes); }
__attribute__((export_name("engine_qmatmul"))) void engine_qmatmul(float* out, const uint8_t* x, const float* xs, const int32_t* xz, int T, const int8_t* wt, const float* ws, const float* b, const int32_t* wsum, int O, int n) {
  qmatmul(out, x, xs, xz, T, wt, ws, b, wsum, O, n);
}
// TIP-X's pass over a support set kept as half floats (an instance of its own per index).
__attribute__((export_name("engine_half_matvec2"))) void engine_half_matvec2(float* out, const uint16_t* F, const float* probes, int M, int D) {
  half_matvec2(out, F, probes, probes + D, M, D);
}
__attribute__((export_name("engine_quantize_row"))) float engine_quantize_row(uint8_t* q, int32_t* zero, const float* x, int n) { return quantize_row(q, zero, x, n); }
