// The CLIP text tower on the same int8 engine as the image tower (transformer.c), for the
// text Worker: token embedding + position, causal transformer blocks, the final LayerNorm and
// text_projection of the pooled token (HF get_text_features).
//
// The host passes the tokens up to and including the pooled one (the end-of-text token, found
// as the model's config says). Under the causal mask no token attends to a later one, so the
// padding after it never changes the pooled row: the pass runs over those tokens only.
//
// The token embedding is int8 per row (a vocabulary of 49408 x 512 floats would be 97 MiB).
#include "transformer.h"

#define TEXT_MAGIC 0x45544F4E  // "NOTE" little-endian: nameonly text engine
#define TEXT_VERSION 1
#define HEADER_BYTES 256
#define MAX_LAYERS 64


typedef struct {
  int magic, version;
  int vocab_size, context_length;
  int dim, hidden_dim, n_heads, n_layers, embed_dim, act;
  float eps;
  uint32_t blob_bytes;
} TextHeader;  // the first words of the blob's 256-byte header

typedef struct {
  int vocab_size, context_length, dim, hidden_dim, n_heads, n_layers, embed_dim, act;
  float eps;
} TextConfig;

typedef struct {
  QLinear token;         // [vocab, dim] int8 rows with a scale each (bias and sums unused)
  const float* pos;      // [context_length, dim]
  Layer layers[MAX_LAYERS];
  const float *final_g, *final_b;
  QLinear proj;          // [embed_dim, dim], no bias
} TextWeights;

typedef struct {
  Stack st;              // T = this pass's tokens
  int32_t* tokens;       // [context_length] written by the host
  float* emb;            // [embed_dim] the text embedding
} TextState;

static TextHeader header_in;
static TextConfig c;
static TextWeights w;
static TextState s;
static uint8_t* blob;
static uint32_t blob_size, state_size;
static int reserved, ready, last_error;

static uint64_t layout_bytes(const TextConfig* p) {
  uint64_t D = p->dim;
  return HEADER_BYTES + qlinear_bytes(p->vocab_size, p->dim) + floats_bytes((uint64_t)p->context_length * D) + p->n_layers * layer_bytes(p->dim, p->hidden_dim) +
         2 * floats_bytes(D) + qlinear_bytes(p->embed_dim, p->dim);
}

static uint64_t state_bytes(const TextConfig* p) {
  uint64_t T = p->context_length, D = p->dim, H = p->hidden_dim > p->dim ? p->hidden_dim : p->dim;
  return 5 * floats_bytes(T * D) + 2 * floats_bytes(T * T) + floats_bytes(T * H) + align16(T * H) + 2 * floats_bytes(T) + floats_bytes(T) + floats_bytes(p->embed_dim);
}

static const uint8_t* cursor;

static void map_weights(void) {
  int D = c.dim;
  cursor = blob + HEADER_BYTES;
  w.token = take_qlinear(&cursor, c.vocab_size, D);
  w.pos = take_floats(&cursor, (uint64_t)c.context_length * D);
  for (int l = 0; l < c.n_layers; l++) w.layers[l] = take_layer(&cursor, D, c.hidden_dim);
  w.final_g = take_floats(&cursor, D);
  w.final_b = take_floats(&cursor, D);
  w.proj = take_qlinear(&cursor, c.embed_dim, D);
}

static int read_config(const TextHeader* h, TextConfig* p) {
  if (h->magic != TEXT_MAGIC) return E_MAGIC;
  if (h->version != TEXT_VERSION) return E_VERSION;
  p->vocab_size = h->vocab_size; p->context_length = h->context_length; p->dim = h->dim; p->hidden_dim = h->hidden_dim;
  p->n_heads = h->n_heads; p->n_layers = h->n_layers; p->embed_dim = h->embed_dim; p->act = h->act; p->eps = h->eps;
  if (p->vocab_size < 1 || p->vocab_size > 1 << 20 || p->context_length < 2 || p->context_length > 1024) return E_CONFIG;
  if (p->dim < 1 || p->dim > 4096 || p->hidden_dim < 1 || p->hidden_dim > 16384 || p->embed_dim < 1 || p->embed_dim > 4096) return E_CONFIG;
  if (p->n_heads < 1 || p->dim % p->n_heads || p->n_layers < 1 || p->n_layers > MAX_LAYERS) return E_CONFIG;
  if (p->act < 0 || p->act > 2 || !(p->eps > 0 && p->eps < 1)) return E_CONFIG;
  return OK;
}

// ---------------------------------------------------------------------------------
// Set-up, as the image tower's: header, reserve (one grow), stream the blob, init.

__attribute__((export_name("text_header"))) void* text_header(void) { return &header_in; }
__attribute__((export_name("text_error"))) int text_error(void) { return last_error; }
__attribute__((export_name("text_state_bytes"))) uint32_t text_state_bytes(void) { return state_size; }

__attribute__((export_name("text_reserve"))) void* text_reserve(uint32_t bytes) {
  if (reserved) { last_error = E_STATE; return 0; }
  if ((last_error = read_config(&header_in, &c))) return 0;
  uint64_t need = layout_bytes(&c), state = state_bytes(&c);
  uint8_t* p;
  if (!(blob = reserve_tower(need, state, header_in.blob_bytes, bytes, &p, &last_error))) return 0;
  blob_size = (uint32_t)need;
  state_size = (uint32_t)state;
  int T = c.context_length, D = c.dim, H = c.hidden_dim > D ? c.hidden_dim : D;
  Stack* t = &s.st;
#define CARVE(field, type, count) (field = (type*)p, p += align16(sizeof(type) * (uint64_t)(count)))
  CARVE(t->x, float, T * D); CARVE(t->xb, float, T * D);
  CARVE(t->q, float, T * D); CARVE(t->k, float, T * D); CARVE(t->v, float, T * D);
  CARVE(t->att, float, T * T); CARVE(t->att2, float, T * T);
  CARVE(t->hb, float, T * H);
  CARVE(t->xq, uint8_t, T * H);
  CARVE(t->xs, float, T); CARVE(t->xz, int32_t, T);
  CARVE(s.tokens, int32_t, T);
  CARVE(s.emb, float, c.embed_dim);
#undef CARVE
  t->dim = D; t->hidden_dim = c.hidden_dim; t->n_heads = c.n_heads; t->head_dim = D / c.n_heads;
  t->act = c.act; t->eps = c.eps; t->omega = 0;
  reserved = 1;
  return blob;
}

__attribute__((export_name("text_init"))) int text_init(void) {
  if (!reserved) return last_error = E_STATE;
  const uint8_t* a = (const uint8_t*)&header_in;
  for (unsigned i = 0; i < sizeof(TextHeader); i++) if (blob[i] != a[i]) return last_error = E_STATE;
  map_weights();
  if ((uint64_t)(cursor - blob) != blob_size) return last_error = E_SIZE;
  ready = 1;
  return OK;
}

// ---------------------------------------------------------------------------------
// The forward pass over text_tokens()[0 .. n): the embedding of the last of them.

__attribute__((export_name("text_forward"))) int text_forward(int n) {
  if (!ready) return last_error = E_STATE;
  if (n < 1 || n > c.context_length) return last_error = E_TOKENS;
  int D = c.dim;
  Stack* st = &s.st;
  st->T = n;
  for (int i = 0; i < n; i++) {
    int id = s.tokens[i];
    if (id < 0 || id >= c.vocab_size) return last_error = E_TOKENS;
    const int8_t* row = w.token.w + (long)id * D;
    float scale = w.token.scale[id];
    float* x = st->x + (long)i * D;
    for (int d = 0; d < D; d++) x[d] = row[d] * scale + w.pos[(long)i * D + d];
  }

  for (int l = 0; l < c.n_layers; l++) block(st, &w.layers[l], ATT_CAUSAL);

  // final_layer_norm + text_projection of the pooled (last) token only.
  float* pooled = st->x + (long)(n - 1) * D;
  layernorm(st, st->xb, pooled, w.final_g, w.final_b, 1);
  linear(st, s.emb, st->xb, &w.proj, 1);
  return OK;
}

__attribute__((export_name("text_tokens"))) int32_t* text_tokens(void) { return s.tokens; }
__attribute__((export_name("text_embeds"))) float* text_embeds(void) { return s.emb; }
