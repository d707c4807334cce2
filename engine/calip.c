// CALIP's terms for the Worker (Guo et al., AAAI 2023, Sec. 3.2, Eqs. 3-7), the equations of
// core/scoring/calip.ts, which stays the reference this is tested against:
//   A = Fs W^T, S = 2A                                   (attention temperature of the official code)
//   f Ft'^T [c] = sum_hw softmax_HW(S)[hw, c] (f . Fs[hw])  (visual-guided text, Eq. 5, Ft' never formed)
//   Fs' = softmax_C(S) W;  fv' = mean_HW(Fs') + max_HW(Fs');  fv' W^T  (text-aware visual, Eqs. 6-7)
#include "kernels.h"

#define ATTENTION_SCALE 2.0f

// scratch: S [HW*C], fs_prime [HW*D], and 3*C + HW + D floats.
__attribute__((export_name("engine_calip_terms")))
void engine_calip_terms(float* clip, float* visual_guided_text, float* text_aware_visual, const float* f, const float* Fs, int HW, const float* W, int C, int D,
                        float* S, float* fs_prime, float* scratch) {
  float *col_max = scratch, *col_sum = col_max + C, *e = col_sum + C, *f_dot_patch = e + C, *fv = f_dot_patch + HW;
  matmul_abt_f32(S, Fs, HW, W, C, D);
  for (long i = 0; i < (long)HW * C; i++) S[i] *= ATTENTION_SCALE;
  matmul_abt_f32(f_dot_patch, Fs, HW, f, 1, D);
  matmul_abt_f32(clip, f, 1, W, C, D);

  // Visual-guided text: a softmax over HW for each class, folded with f . Fs[hw].
  memcpy(col_max, S, sizeof(float) * C);
  for (int p = 1; p < HW; p++)
    for (int c = 0; c < C; c++) col_max[c] = S[(long)p * C + c] > col_max[c] ? S[(long)p * C + c] : col_max[c];
  memset(col_sum, 0, sizeof(float) * C);
  memset(visual_guided_text, 0, sizeof(float) * C);
  for (int p = 0; p < HW; p++) {
    exp_diff_f32(e, S + (long)p * C, col_max, C);
    for (int c = 0; c < C; c++) {
      col_sum[c] += e[c];
      visual_guided_text[c] += e[c] * f_dot_patch[p];
    }
  }
  for (int c = 0; c < C; c++) visual_guided_text[c] /= col_sum[c];

  // Text-aware visual: a softmax over classes for each patch, then Fs' = softmax_C(S) W.
  for (int p = 0; p < HW; p++) softmax_f32(S + (long)p * C, C);
  matmul_ab_f32(fs_prime, S, HW, W, C, D);
  for (int d = 0; d < D; d++) {
    float mean = 0, max = fs_prime[d];
    for (int p = 0; p < HW; p++) {
      float v = fs_prime[(long)p * D + d];
      mean += v;
      max = v > max ? v : max;
    }
    fv[d] = mean / HW + max;
  }
  matmul_abt_f32(text_aware_visual, fv, 1, W, C, D);
}
