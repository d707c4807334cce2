// Kernels of the ViT engine. Compiled twice: with -mrelaxed-simd the int8 dot product is
// i32x4.relaxed_dot_i8x16_i7x16_add_s (one instruction per 16 products where the CPU has
// VNNI), without it the plain SIMD128 path widens to 16 bits for i32x4.dot_i16x8_s.
// Both compute the same integers: weights are int8 in [-127,127] (the i8 operand) and
// activations uint8 in [0,127] (the i7 operand), a range where every lowering of the
// relaxed instruction is exact (VNNI's u8*s8, and the pmaddubsw fallback, whose pairwise
// 16-bit sums stay within 2*127*127 = 32258 and so never saturate).
#include "kernels.h"
#include <wasm_simd128.h>

typedef int8_t i8x16 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

void* memcpy(void* dst, const void* src, unsigned long n) {
  uint8_t* d = dst;
  const uint8_t* s = src;
  while (n--) *d++ = *s++;
  return dst;
}
void* memset(void* dst, int c, unsigned long n) {
  uint8_t* d = dst;
  while (n--) *d++ = (uint8_t)c;
  return dst;
}

// ---------------------------------------------------------------------------------
// int8 dot products: acc (4 lanes) += w[16] . x[16]

#ifdef __wasm_relaxed_simd__
static inline v128_t dot16(v128_t acc, v128_t w, v128_t x) {
  return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_add_s_i32x4((i8x16)w, (i8x16)x, (i32x4)acc);
}
#else
static inline v128_t dot16(v128_t acc, v128_t w, v128_t x) {
  // x < 128, so zero- and sign-extension agree.
  acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w), wasm_u16x8_extend_low_u8x16(x)));
  return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w), wasm_u16x8_extend_high_u8x16(x)));
}
#endif

static inline int32_t hsum(v128_t v) {
  return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

static int32_t tail_dot(const uint8_t* x, const int8_t* w, int from, int n) {
  int32_t s = 0;
  for (int i = from; i < n; i++) s += (int32_t)x[i] * (int32_t)w[i];
  return s;
}

int32_t qdot(const uint8_t* x, const int8_t* w, int n) {
  v128_t acc = wasm_i32x4_splat(0);
  int n16 = n & ~15;
  for (int i = 0; i < n16; i += 16) acc = dot16(acc, wasm_v128_load(w + i), wasm_v128_load(x + i));
  return hsum(acc) + tail_dot(x, w, n16, n);
}

static inline float dequant(int32_t acc, int t, int o, const float* xscale, const int32_t* xzero, const float* wscale, const float* bias, const int32_t* wsum) {
  return wscale[o] * xscale[t] * (float)(acc - xzero[t] * wsum[o]) + bias[o];
}

// Tiles of 4 outputs x 2 tokens (8 accumulators). Outputs are the outer loop, so a tile's
// 4 weight rows stay in L1 while every token passes over them: the weights are read from
// memory once per product.
void qmatmul(float* out, const uint8_t* x, const float* xscale, const int32_t* xzero, int T,
             const int8_t* w, const float* wscale, const float* bias, const int32_t* wsum, int O, int n) {
  int n16 = n & ~15;
  int o = 0;
  for (; o + 4 <= O; o += 4) {
    const int8_t *w0 = w + (long)o * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    int t = 0;
    for (; t + 2 <= T; t += 2) {
      const uint8_t *x0 = x + (long)t * n, *x1 = x0 + n;
      v128_t a00 = wasm_i32x4_splat(0), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
      for (int i = 0; i < n16; i += 16) {
        v128_t xv0 = wasm_v128_load(x0 + i), xv1 = wasm_v128_load(x1 + i);
        v128_t wv0 = wasm_v128_load(w0 + i), wv1 = wasm_v128_load(w1 + i), wv2 = wasm_v128_load(w2 + i), wv3 = wasm_v128_load(w3 + i);
        a00 = dot16(a00, wv0, xv0); a01 = dot16(a01, wv1, xv0); a02 = dot16(a02, wv2, xv0); a03 = dot16(a03, wv3, xv0);
        a10 = dot16(a10, wv0, xv1); a11 = dot16(a11, wv1, xv1); a12 = dot16(a12, wv2, xv1); a13 = dot16(a13, wv3, xv1);
      }
      float* r0 = out + (long)t * O + o;
      float* r1 = r0 + O;
      r0[0] = dequant(hsum(a00) + tail_dot(x0, w0, n16, n), t, o, xscale, xzero, wscale, bias, wsum);
      r0[1] = dequant(hsum(a01) + tail_dot(x0, w1, n16, n), t, o + 1, xscale, xzero, wscale, bias, wsum);
      r0[2] = dequant(hsum(a02) + tail_dot(x0, w2, n16, n), t, o + 2, xscale, xzero, wscale, bias, wsum);
      r0[3] = dequant(hsum(a03) + tail_dot(x0, w3, n16, n), t, o + 3, xscale, xzero, wscale, bias, wsum);
      r1[0] = dequant(hsum(a10) + tail_dot(x1, w0, n16, n), t + 1, o, xscale, xzero, wscale, bias, wsum);
      r1[1] = dequant(hsum(a11) + tail_dot(x1, w1, n16, n), t + 1, o + 1, xscale, xzero, wscale, bias, wsum);
      r1[2] = dequant(hsum(a12) + tail_dot(x1, w2, n16, n), t + 1, o + 2, xscale, xzero, wscale, bias, wsum);
      r1[3] = dequant(hsum(a13) + tail_dot(x1, w3, n16, n), t + 1, o + 3, xscale, xzero, wscale, bias, wsum);
    }
    for (; t < T; t++)
      for (int k = 0; k < 4; k++) out[(long)t * O + o + k] = dequant(qdot(x + (long)t * n, w + (long)(o + k) * n, n), t, o + k, xscale, xzero, wscale, bias, wsum);
  }
  for (; o < O; o++)
    for (int t = 0; t < T; t++) out[(long)t * O + o] = dequant(qdot(x + (long)t * n, w + (long)o * n, n), t, o, xscale, xzero, wscale, bias, wsum);
}

float quantize_row(uint8_t* q, int32_t* zero, const float* x, int n) {
  // The range always holds 0, so zero is exact (padding, ReLU-like tails).
  float lo = 0, hi = 0;
  for (int i = 0; i < n; i++) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  float scale = (hi - lo) / QMAX;
  if (!(scale > 0)) scale = 1;
  float inv = 1 / scale;
  int32_t z = (int32_t)__builtin_rintf(-lo * inv);
  *zero = z;
  for (int i = 0; i < n; i++) {
    int32_t v = (int32_t)__builtin_rintf(x[i] * inv) + z;
    q[i] = (uint8_t)(v < 0 ? 0 : v > QMAX ? QMAX : v);
  }
  return scale;
}

// ---------------------------------------------------------------------------------
// f32 helpers (attention). Same code in both builds: results do not depend on the kernel.

float dot_f32(const float* a, const float* b, int n) {
  v128_t acc = wasm_f32x4_splat(0);
  int n4 = n & ~3;
  for (int i = 0; i < n4; i += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  float s = (wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1)) + (wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3));
  for (int i = n4; i < n; i++) s += a[i] * b[i];
  return s;
}

static inline float hsum_f32(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

// Tiles of 2 rows of A x 4 rows of B (8 accumulators), as qmatmul. Row strides lda, ldb, ldo.
void gemm_abt_f32(float* out, int ldo, const float* A, int lda, int M, const float* B, int ldb, int N, int K) {
  int K4 = K & ~3, m = 0;
  for (; m + 2 <= M; m += 2) {
    const float *a0 = A + (long)m * lda, *a1 = a0 + lda;
    float *r0 = out + (long)m * ldo, *r1 = r0 + ldo;
    int n = 0;
    for (; n + 4 <= N; n += 4) {
      const float *b0 = B + (long)n * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
      for (int k = 0; k < K4; k += 4) {
        v128_t x0 = wasm_v128_load(a0 + k), x1 = wasm_v128_load(a1 + k);
        v128_t y0 = wasm_v128_load(b0 + k), y1 = wasm_v128_load(b1 + k), y2 = wasm_v128_load(b2 + k), y3 = wasm_v128_load(b3 + k);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(x0, y0)); c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(x0, y1));
        c02 = wasm_f32x4_add(c02, wasm_f32x4_mul(x0, y2)); c03 = wasm_f32x4_add(c03, wasm_f32x4_mul(x0, y3));
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(x1, y0)); c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(x1, y1));
        c12 = wasm_f32x4_add(c12, wasm_f32x4_mul(x1, y2)); c13 = wasm_f32x4_add(c13, wasm_f32x4_mul(x1, y3));
      }
      float t00 = 0, t01 = 0, t02 = 0, t03 = 0, t10 = 0, t11 = 0, t12 = 0, t13 = 0;
      for (int k = K4; k < K; k++) {
        t00 += a0[k] * b0[k]; t01 += a0[k] * b1[k]; t02 += a0[k] * b2[k]; t03 += a0[k] * b3[k];
        t10 += a1[k] * b0[k]; t11 += a1[k] * b1[k]; t12 += a1[k] * b2[k]; t13 += a1[k] * b3[k];
      }
      r0[n] = hsum_f32(c00) + t00; r0[n + 1] = hsum_f32(c01) + t01; r0[n + 2] = hsum_f32(c02) + t02; r0[n + 3] = hsum_f32(c03) + t03;
      r1[n] = hsum_f32(c10) + t10; r1[n + 1] = hsum_f32(c11) + t11; r1[n + 2] = hsum_f32(c12) + t12; r1[n + 3] = hsum_f32(c13) + t13;
    }
    for (; n < N; n++) {
      r0[n] = dot_f32(a0, B + (long)n * ldb, K);
      r1[n] = dot_f32(a1, B + (long)n * ldb, K);
    }
  }
  for (; m < M; m++)
    for (int n = 0; n < N; n++) out[(long)m * ldo + n] = dot_f32(A + (long)m * lda, B + (long)n * ldb, K);
}

void matmul_abt_f32(float* out, const float* A, int M, const float* B, int N, int K) { gemm_abt_f32(out, N, A, K, M, B, K, N, K); }

// Two rows of A at a time; each 16-column strip of the output is accumulated in registers
// over all of K, so B is loaded once per row pair and the output stored once.
void gemm_ab_f32(float* out, int ldo, const float* A, int lda, int M, const float* B, int ldb, int K, int N) {
  int N16 = N & ~15, m = 0;
  for (; m + 2 <= M; m += 2) {
    const float *a0 = A + (long)m * lda, *a1 = a0 + lda;
    float *o0 = out + (long)m * ldo, *o1 = o0 + ldo;
    for (int n = 0; n < N16; n += 16) {
      v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
      for (int k = 0; k < K; k++) {
        const float* b = B + (long)k * ldb + n;
        v128_t y0 = wasm_v128_load(b), y1 = wasm_v128_load(b + 4), y2 = wasm_v128_load(b + 8), y3 = wasm_v128_load(b + 12);
        v128_t x0 = wasm_f32x4_splat(a0[k]), x1 = wasm_f32x4_splat(a1[k]);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(x0, y0)); c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(x0, y1));
        c02 = wasm_f32x4_add(c02, wasm_f32x4_mul(x0, y2)); c03 = wasm_f32x4_add(c03, wasm_f32x4_mul(x0, y3));
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(x1, y0)); c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(x1, y1));
        c12 = wasm_f32x4_add(c12, wasm_f32x4_mul(x1, y2)); c13 = wasm_f32x4_add(c13, wasm_f32x4_mul(x1, y3));
      }
      wasm_v128_store(o0 + n, c00); wasm_v128_store(o0 + n + 4, c01); wasm_v128_store(o0 + n + 8, c02); wasm_v128_store(o0 + n + 12, c03);
      wasm_v128_store(o1 + n, c10); wasm_v128_store(o1 + n + 4, c11); wasm_v128_store(o1 + n + 8, c12); wasm_v128_store(o1 + n + 12, c13);
    }
    for (int n = N16; n < N; n++) {
      float s0 = 0, s1 = 0;
      for (int k = 0; k < K; k++) {
        s0 += a0[k] * B[(long)k * ldb + n];
        s1 += a1[k] * B[(long)k * ldb + n];
      }
      o0[n] = s0;
      o1[n] = s1;
    }
  }
  for (; m < M; m++)
    for (int n = 0; n < N; n++) {
      float s = 0;
      for (int k = 0; k < K; k++) s += A[(long)m * lda + k] * B[(long)k * ldb + n];
      out[(long)m * ldo + n] = s;
    }
}

void matmul_ab_f32(float* out, const float* A, int M, const float* B, int K, int N) { gemm_ab_f32(out, N, A, K, M, B, N, K, N); }

void axpy_f32(float* y, float a, const float* x, int n) {
  v128_t av = wasm_f32x4_splat(a);
  int n4 = n & ~3;
  for (int i = 0; i < n4; i += 4) wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(y + i), wasm_f32x4_mul(av, wasm_v128_load(x + i))));
  for (int i = n4; i < n; i++) y[i] += a * x[i];
}

// IEEE half -> float, exact for every finite value: the half's exponent and mantissa moved
// into float position, then scaled by 2^112 (which also turns subnormal halves into normal
// floats); the sign bit rides along.
static inline v128_t half_to_float4(v128_t h32) {
  v128_t bits = wasm_v128_or(wasm_i32x4_shl(wasm_v128_and(h32, wasm_i32x4_splat(0x7fff)), 13), wasm_i32x4_shl(wasm_v128_and(h32, wasm_i32x4_splat(0x8000)), 16));
  return wasm_f32x4_mul(bits, wasm_f32x4_splat(0x1p112f));
}

static inline float half_to_float(uint16_t h) {
  union { uint32_t i; float f; } u = { .i = ((uint32_t)(h & 0x7fff) << 13) | ((uint32_t)(h & 0x8000) << 16) };
  return u.f * 0x1p112f;
}

void half_matvec2(float* out, const uint16_t* F, const float* p0, const float* p1, int M, int D) {
  int D8 = D & ~7;
  for (int j = 0; j < M; j++) {
    const uint16_t* row = F + (long)j * D;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
    for (int d = 0; d < D8; d += 8) {
      v128_t h = wasm_v128_load(row + d);
      v128_t lo = half_to_float4(wasm_u32x4_extend_low_u16x8(h)), hi = half_to_float4(wasm_u32x4_extend_high_u16x8(h));
      a0 = wasm_f32x4_add(a0, wasm_f32x4_add(wasm_f32x4_mul(lo, wasm_v128_load(p0 + d)), wasm_f32x4_mul(hi, wasm_v128_load(p0 + d + 4))));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_add(wasm_f32x4_mul(lo, wasm_v128_load(p1 + d)), wasm_f32x4_mul(hi, wasm_v128_load(p1 + d + 4))));
    }
    float s0 = (wasm_f32x4_extract_lane(a0, 0) + wasm_f32x4_extract_lane(a0, 1)) + (wasm_f32x4_extract_lane(a0, 2) + wasm_f32x4_extract_lane(a0, 3));
    float s1 = (wasm_f32x4_extract_lane(a1, 0) + wasm_f32x4_extract_lane(a1, 1)) + (wasm_f32x4_extract_lane(a1, 2) + wasm_f32x4_extract_lane(a1, 3));
    for (int d = D8; d < D; d++) {
      float f = half_to_float(row[d]);
      s0 += f * p0[d];
      s1 += f * p1[d];
    }
    out[2 * j] = s0;
    out[2 * j + 1] = s1;
  }
}

// ---------------------------------------------------------------------------------
// Math without libm (relative error about 1e-7 where used), four lanes at a time where it
// matters (softmax and GELU call exp about 10^7 times per ViT-B/16 image), scalar for tails.

#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.42860682030941723e-6f

// e^x = 2^k e^r, |r| <= ln2/2; Taylor to r^7 (error < 2e-8 relative on that interval).
static inline v128_t exp4(v128_t x) {
  v128_t under = wasm_f32x4_lt(x, wasm_f32x4_splat(-87.0f));
  x = wasm_f32x4_min(x, wasm_f32x4_splat(88.0f));
  x = wasm_f32x4_max(x, wasm_f32x4_splat(-87.0f));
  v128_t k = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(LOG2E)));
  v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(k, wasm_f32x4_splat(LN2_HI))), wasm_f32x4_mul(k, wasm_f32x4_splat(LN2_LO)));
  static const float c[] = { 1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1, 1 };
  v128_t p = wasm_f32x4_splat(c[0]);
  for (int i = 1; i < 8; i++) p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(c[i]));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(k), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(p, scale), under);
}

void softmax_f32(float* x, int n) {
  float m = x[0];
  for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
  int n4 = n & ~3;
  v128_t mv = wasm_f32x4_splat(m), sv = wasm_f32x4_splat(0);
  for (int i = 0; i < n4; i += 4) {
    v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(x + i), mv));
    wasm_v128_store(x + i, e);
    sv = wasm_f32x4_add(sv, e);
  }
  float sum = (wasm_f32x4_extract_lane(sv, 0) + wasm_f32x4_extract_lane(sv, 1)) + (wasm_f32x4_extract_lane(sv, 2) + wasm_f32x4_extract_lane(sv, 3));
  for (int i = n4; i < n; i++) sum += (x[i] = exp_f32(x[i] - m));
  float inv = 1 / sum;
  for (int i = 0; i < n; i++) x[i] *= inv;
}

void exp_diff_f32(float* e, const float* x, const float* m, int n) {
  int n4 = n & ~3;
  for (int i = 0; i < n4; i += 4) wasm_v128_store(e + i, exp4(wasm_f32x4_sub(wasm_v128_load(x + i), wasm_v128_load(m + i))));
  for (int i = n4; i < n; i++) e[i] = exp_f32(x[i] - m[i]);
}

static inline v128_t act4(v128_t x, int act) {
  v128_t one = wasm_f32x4_splat(1), half = wasm_f32x4_splat(0.5f);
  if (act == 0) return wasm_f32x4_div(x, wasm_f32x4_add(one, exp4(wasm_f32x4_mul(x, wasm_f32x4_splat(-1.702f)))));
  if (act == 1) {
    // 0.5 x (1 + erf(x / sqrt 2)), erf by Abramowitz & Stegun 7.1.26 on |.|, sign restored.
    v128_t z = wasm_f32x4_mul(x, wasm_f32x4_splat(0.70710678118654752f));
    v128_t a = wasm_f32x4_abs(z);
    v128_t t = wasm_f32x4_div(one, wasm_f32x4_add(one, wasm_f32x4_mul(a, wasm_f32x4_splat(0.3275911f))));
    static const float c[] = { 1.061405429f, -1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f };
    v128_t p = wasm_f32x4_splat(c[0]);
    for (int i = 1; i < 5; i++) p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(c[i]));
    v128_t e = wasm_f32x4_sub(one, wasm_f32x4_mul(wasm_f32x4_mul(p, t), exp4(wasm_f32x4_neg(wasm_f32x4_mul(a, a)))));
    e = wasm_v128_bitselect(wasm_f32x4_neg(e), e, wasm_f32x4_lt(z, wasm_f32x4_splat(0)));
    return wasm_f32x4_mul(wasm_f32x4_mul(half, x), wasm_f32x4_add(one, e));
  }
  // 0.5 x (1 + tanh(u)), tanh(u) = 1 - 2 / (e^{2u} + 1), which saturates correctly at both ends.
  v128_t u = wasm_f32x4_mul(wasm_f32x4_splat(0.79788456080286536f), wasm_f32x4_add(x, wasm_f32x4_mul(wasm_f32x4_splat(0.044715f), wasm_f32x4_mul(x, wasm_f32x4_mul(x, x)))));
  v128_t th = wasm_f32x4_sub(one, wasm_f32x4_div(wasm_f32x4_splat(2), wasm_f32x4_add(exp4(wasm_f32x4_add(u, u)), one)));
  return wasm_f32x4_mul(wasm_f32x4_mul(half, x), wasm_f32x4_add(one, th));
}

static float act1(float x, int act) {
  if (act == 0) return x / (1 + exp_f32(-1.702f * x));
  if (act == 1) return 0.5f * x * (1 + erf_f32(x * 0.70710678118654752f));
  return 0.5f * x * (1 + tanh_f32(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}

void activation_f32(float* x, long n, int act) {
  long n4 = n & ~3L;
  for (long i = 0; i < n4; i += 4) wasm_v128_store(x + i, act4(wasm_v128_load(x + i), act));
  for (long i = n4; i < n; i++) x[i] = act1(x[i], act);
}

float sqrt_f32(float x) { return __builtin_sqrtf(x); }

float exp_f32(float x) {
  if (x < -87.0f) return 0;
  if (x > 88.0f) x = 88.0f;
  // e^x = 2^k e^r, |r| <= ln2/2; Taylor to r^7 (error < 2e-8 relative on that interval).
  float k = __builtin_rintf(x * 1.44269504088896341f);
  float r = (x - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
  float p = 1 + r * (1 + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  union { int32_t i; float f; } scale = { .i = ((int32_t)k + 127) << 23 };
  return p * scale.f;
}

float erf_f32(float x) {
  // Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7.
  float s = x < 0 ? -1.0f : 1.0f, a = x * s;
  float t = 1 / (1 + 0.3275911f * a);
  float y = 1 - t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f)))) * exp_f32(-a * a);
  return s * y;
}

float tanh_f32(float x) {
  if (x > 9) return 1;
  if (x < -9) return -1;
  float e = exp_f32(2 * x);
  return (e - 1) / (e + 1);
}
