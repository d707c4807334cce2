// Kernels of the ViT engine: the int8 matrix product (the hot loop), f32 vector
// helpers, and the few math functions a -nostdlib build needs. See kernels.c.
#ifndef NAMEONLY_KERNELS_H
#define NAMEONLY_KERNELS_H
#include <stdint.h>

// Activations are quantised per row to 7 bits with a zero point, q = round(x/s) + z in [0,127]:
// the relaxed dot product is exact on every lowering only while one operand stays below 128.
#define QMAX 127

// out[t*O + o] = wscale[o] * xscale[t] * (sum_i x[t*n+i] * w[o*n+i] - xzero[t] * wsum[o]) + bias[o]
void qmatmul(float* out, const uint8_t* x, const float* xscale, const int32_t* xzero, int T,
             const int8_t* w, const float* wscale, const float* bias, const int32_t* wsum, int O, int n);
// sum_i x[i] * w[i] with the module's int8 dot kernel (the start-up probe and tests use it).
int32_t qdot(const uint8_t* x, const int8_t* w, int n);
// Row quantisation: x[n] -> q[n], returns the scale, writes the zero point.
float quantize_row(uint8_t* q, int32_t* zero, const float* x, int n);

// out[2j], out[2j+1] = F_j . p0, F_j . p1 over half-precision rows F [M, D] (TIP-X's pass).
void half_matvec2(float* out, const uint16_t* F, const float* p0, const float* p1, int M, int D);

// x[n] <- softmax(x); x[n] <- act(x) with act 0 quick_gelu, 1 gelu (erf), 2 gelu (tanh).
void softmax_f32(float* x, int n);
// e[i] = exp(x[i] - m[i])
void exp_diff_f32(float* e, const float* x, const float* m, int n);
void activation_f32(float* x, long n, int act);

// out[M, N] = A[M, K] B[N, K]^T and out[M, N] = A[M, K] B[K, N] in f32, with row strides
// (attention over one head's columns); the matmul_ forms are the contiguous case (CALIP).
void gemm_abt_f32(float* out, int ldo, const float* A, int lda, int M, const float* B, int ldb, int N, int K);
void gemm_ab_f32(float* out, int ldo, const float* A, int lda, int M, const float* B, int ldb, int K, int N);
void matmul_abt_f32(float* out, const float* A, int M, const float* B, int N, int K);
void matmul_ab_f32(float* out, const float* A, int M, const float* B, int K, int N);

float dot_f32(const float* a, const float* b, int n);
void axpy_f32(float* y, float a, const float* x, int n);  // y += a * x

float exp_f32(float x);
float erf_f32(float x);
float tanh_f32(float x);
float sqrt_f32(float x);

void* memcpy(void* dst, const void* src, unsigned long n);
void* memset(void* dst, int c, unsigned long n);
#endif
