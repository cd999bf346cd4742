// A small GEMM for the recurrent products of the LSTM, C (M, N) (+)= A (M, K) · B (K, N), where
// B is a weight matrix packed once per training step into column panels and then reused by all
// T time steps. OpenBLAS re-packs its B operand on every call; for the per-step products
// (M = batch = 32 rows against a 256×1024 weight) that packing costs as much as the arithmetic,
// so the per-step GEMMs use this kernel: ≈ 95% of the FMA peak on one core here, against ≈ 70%
// for OpenBLAS (docs/native-engine.md). The large GEMMs over all T steps stay with OpenBLAS.
//
// Packed layout: panel p holds columns [p·NR, p·NR + NR) of B as K rows of NR floats (zero
// padded past N). NR is 32 with AVX-512, 16 with AVX2 or the portable fallback.
#pragma once
#include <cstddef>

#include "lstm_buffer.h"

namespace lstm {

struct PackedB {
  int K = 0, N = 0, NR = 0, panels = 0;
  Buffer data;  // panels × K × NR
  const float* panel(int p) const { return data.data() + (size_t)p * K * NR; }
};

// The panel width of the kernel that runs on this CPU.
int gemm_panel_width();
// "avx512 8x32", "avx2 6x16" or "portable 4x16".
const char* gemm_kernel_name();

// Size P for a K × N matrix (no packing yet).
void pack_alloc(PackedB& P, int K, int N);
// Pack panels [p0, p1) of B, where B[k][n] = src[k·ld + n], or src[n·ld + k] when transposed.
void pack_panels(PackedB& P, const float* src, int ld, bool transposed, int p0, int p1);

// For panels [p0, p1) of P: C[:, p·NR …] = (accumulate ? C : 0) + A · B over all M rows, where
// A(r, k) = A[r·a_rs + k·a_ks] (row-major A: a_rs = lda, a_ks = 1; Aᵀ stored row-major: a_rs = 1,
// a_ks = lda). Columns at or past N are neither read nor written.
void gemm_packed(int M, const float* A, ptrdiff_t a_rs, ptrdiff_t a_ks, const PackedB& P, int p0, int p1, float* C,
                 int ldc, bool accumulate);

}  // namespace lstm
