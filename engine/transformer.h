// What the image and text towers share: int8 linear layers and pre-LN transformer blocks
// over one stack of run-state buffers, the blob cursor that maps weights, and the bump
// allocator over the module's linear memory. See transformer.c.
#ifndef NAMEONLY_TRANSFORMER_H
#define NAMEONLY_TRANSFORMER_H
#include "kernels.h"

typedef struct {
  const int8_t* w;       // [out, in]
  const float* scale;    // [out] per output channel
  const float* bias;     // [out] (zeros where the checkpoint has none)
  const int32_t* wsum;   // [out] sum_i w[o,i], for the activations' zero point
  int out, in;
} QLinear;

typedef struct {
  const float *ln1_g, *ln1_b;
  QLinear q, k, v, o;
  const float *ln2_g, *ln2_b;
  QLinear fc1, fc2;
} Layer;

// The last block's attention variants (image tower) and the text tower's causal mask.
enum { ATT_STANDARD = 0, ATT_CSA = 1, ATT_NACLIP = 2, ATT_CLEARCLIP = 3, ATT_CAUSAL = 4 };

// One tower's dimensions and run state. T is the rows of this pass; the text tower packs several
// texts into one pass, each a segment that attends only within itself (n_segments 0: one of T rows).
typedef struct {
  int T, dim, hidden_dim, n_heads, head_dim, act;
  float eps;
  int n_segments;
  const int32_t* segment_rows;  // [n_segments] rows of each segment, in order
  float *x, *xb;         // [T, dim] residual stream, scratch
  float *q, *k, *v;      // [T, dim]
  float *att, *att2;     // [T, T] one head's attention (att2: CSA's key-key half); a segment's for the text tower
  const float* omega;    // [T, T] NACLIP's neighbourhood term
  float* hb;             // [T, max(hidden_dim, dim)], or other wide scratch
  uint8_t* xq;           // quantised rows of the next product's input
  float* xs;             // [T] row scales
  int32_t* xz;           // [T] row zero points
} Stack;

// What engine_error and text_error report.
enum { OK = 0, E_MAGIC = 1, E_VERSION = 2, E_CONFIG = 3, E_SIZE = 4, E_MEMORY = 5, E_STATE = 6, E_TOKENS = 7 };

// Memory: one bump allocator over the linear memory (0 when it cannot grow).
void* bump(uint32_t bytes);
uint64_t align16(uint64_t n);
// A tower's blob and run state in one grow. `need`: the blob's size from the config, which the
// header (`declared`) and the host (`bytes`) must agree with. The blob's address, *state_at the
// state's; 0 with *error set on failure.
uint8_t* reserve_tower(uint64_t need, uint64_t state, uint32_t declared, uint32_t bytes, uint8_t** state_at, int* error);

// The blob layout: sizes, and a cursor that hands out the tensors in order.
uint64_t floats_bytes(uint64_t n);
uint64_t qlinear_bytes(int out, int in);
uint64_t layer_bytes(int dim, int hidden_dim);
const float* take_floats(const uint8_t** cursor, uint64_t n);
QLinear take_qlinear(const uint8_t** cursor, int out, int in);
Layer take_layer(const uint8_t** cursor, int dim, int hidden_dim);

void add_into(float* x, const float* y, int n);
void layernorm(const Stack* s, float* out, const float* x, const float* g, const float* b, int rows);
// out[rows, l->out] = l(x[rows, l->in]): quantise the rows, then the int8 product.
void linear(const Stack* s, float* out, const float* x, const QLinear* l, int rows);
// s->x <- the block of `kind` applied to s->x (NACLIP and ClearCLIP: the attention alone).
void block(const Stack* s, const Layer* L, int kind);
#endif
