// The CLIP text tower on the same int8 engine as the image tower (transformer.c), for the
// text Worker: token embedding + position, causal transformer blocks, the final LayerNorm and
// text_projection of the pooled token (HF get_text_features).
//
// The host passes the tokens up to and including the pooled one (the end-of-text token, found
// as the model's config says). Under the causal mask no token attends to a later one, so the
// padding after it never changes the pooled row: the pass runs over those tokens only. Several
// texts go through one pass, their tokens one after the other, each attending only within itself:
// every weight row read then serves all of them (a text alone is ~10 rows, too few to reuse it).
//
// The token embedding is int8 per row (a vocabulary of 49408 x 512 floats would be 97 MiB).
#include "transformer.h"

#define TEXT_MAGIC 0x45544F4E  // "NOTE" little-endian: nameonly text engine
#define TEXT_VERSION 1
#define HEADER_BYTES 256
#define MAX_LAYERS 64
#define MAX_ROWS 256  // tokens of one pass, over all its texts (at least one context)


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
  Stack st;              // T = this pass's tokens, one segment per text
  int32_t* tokens;       // [rows] written by the host: the texts' tokens, one after the other
  int32_t* lengths;      // [rows] written by the host: each text's token count
  float* emb;            // [rows, embed_dim] the texts' embeddings
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

static uint64_t rows_of(const TextConfig* p) { return p->context_length > MAX_ROWS ? p->context_length : MAX_ROWS; }

static uint64_t state_bytes(const TextConfig* p) {
  uint64_t R = rows_of(p), C = p->context_length, D = p->dim, H = p->hidden_dim > p->dim ? p->hidden_dim : p->dim;
  return 5 * floats_bytes(R * D) + floats_bytes(C * C) + floats_bytes(R * H) + align16(R * H) + 4 * floats_bytes(R) + floats_bytes(R * p->embed_dim);
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
  int R = (int)rows_of(&c), C = c.context_length, D = c.dim, H = c.hidden_dim > D ? c.hidden_dim : D;
  Stack* t = &s.st;
#define CARVE(field, type, count) (field = (type*)p, p += align16(sizeof(type) * (uint64_t)(count)))
  CARVE(t->x, float, R * D); CARVE(t->xb, float, R * D);
  CARVE(t->q, float, R * D); CARVE(t->k, float, R * D); CARVE(t->v, float, R * D);
  CARVE(t->att, float, C * C);  // one text's attention at a time
  CARVE(t->hb, float, R * H);
  CARVE(t->xq, uint8_t, R * H);
  CARVE(t->xs, float, R); CARVE(t->xz, int32_t, R);
  CARVE(s.tokens, int32_t, R); CARVE(s.lengths, int32_t, R);
  CARVE(s.emb, float, R * c.embed_dim);
#undef CARVE
  t->dim = D; t->hidden_dim = c.hidden_dim; t->n_heads = c.n_heads; t->head_dim = D / c.n_heads;
  t->act = c.act; t->eps = c.eps; t->omega = 0; t->att2 = 0; t->segment_rows = s.lengths;
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
// The forward pass over `n` texts: text_lengths()[0 .. n) tokens each, one after the other in
// text_tokens(). The embedding of each text's last token, in text_embeds() [n, embed_dim].

__attribute__((export_name("text_forward"))) int text_forward(int n) {
  if (!ready) return last_error = E_STATE;
  int D = c.dim, rows = 0;
  if (n < 1 || n > (int)rows_of(&c)) return last_error = E_TOKENS;
  for (int g = 0; g < n; g++) {
    if (s.lengths[g] < 1 || s.lengths[g] > c.context_length) return last_error = E_TOKENS;
    rows += s.lengths[g];
  }
  if (rows > (int)rows_of(&c)) return last_error = E_TOKENS;
  Stack* st = &s.st;
  st->T = rows;
  st->n_segments = n;
  for (int g = 0, row = 0; g < n; g++)
    for (int i = 0; i < s.lengths[g]; i++, row++) {  // positions restart with each text
      int id = s.tokens[row];
      if (id < 0 || id >= c.vocab_size) return last_error = E_TOKENS;
      const int8_t* w_row = w.token.w + (long)id * D;
      float scale = w.token.scale[id];
      float* x = st->x + (long)row * D;
      for (int d = 0; d < D; d++) x[d] = w_row[d] * scale + w.pos[(long)i * D + d];
    }

  for (int l = 0; l < c.n_layers; l++) block(st, &w.layers[l], ATT_CAUSAL);

  // final_layer_norm + text_projection of each text's pooled (last) token only.
  for (int g = 0, end = 0; g < n; g++) {
    end += s.lengths[g];
    layernorm(st, st->xb + (long)g * D, st->x + (long)(end - 1) * D, w.final_g, w.final_b, 1);
  }
  linear(st, s.emb, st->xb, &w.proj, n);
  return OK;
}

__attribute__((export_name("text_tokens"))) int32_t* text_tokens(void) { return s.tokens; }
__attribute__((export_name("text_lengths"))) int32_t* text_lengths(void) { return s.lengths; }
__attribute__((export_name("text_embeds"))) float* text_embeds(void) { return s.emb; }
__attribute__((export_name("text_max_rows"))) int text_max_rows(void) { return (int)rows_of(&c); }
