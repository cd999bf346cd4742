#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define LSTM_X86 1
#endif

namespace lstm {

namespace {

enum class Isa { Portable, Avx2, Avx512 };

// K is processed in chunks of this many rows of a panel (32 KB of an AVX-512 panel, within L1).
constexpr int kKc = 256;

Isa detect_isa() {
#ifdef LSTM_X86
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // LSTM_NATIVE_GEMM_ISA=avx2|portable selects a lesser kernel (to test it); never a greater one
  if (const char* force = std::getenv("LSTM_NATIVE_GEMM_ISA")) {
    if (!std::strcmp(force, "portable")) return Isa::Portable;
    if (!std::strcmp(force, "avx2") && avx2) return Isa::Avx2;
  }
  if (avx512) return Isa::Avx512;
  if (avx2) return Isa::Avx2;
#endif
  return Isa::Portable;
}

const Isa kIsa = detect_isa();

// ------------------------------------------------------------------------------------------
// micro-kernels: an MR × NR tile of C, accumulated over all K in registers

#ifdef LSTM_X86
// AVX-512: NR = 32 (two zmm per row), MR ≤ 8 → 16 accumulators.
template <int MR>
__attribute__((target("avx512f"))) inline void tile_avx512(int K, const float* A, ptrdiff_t rs, ptrdiff_t ks,
                                                           const float* Bp, float* C, int ldc, int ncols,
                                                           bool accumulate) {
  const __mmask16 m0 = ncols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ncols) - 1);
  const __mmask16 m1 = ncols >= 32   ? (__mmask16)0xFFFF
                       : ncols <= 16 ? (__mmask16)0
                                     : (__mmask16)((1u << (ncols - 16)) - 1);
  __m512 c0[MR], c1[MR];
  _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
    c0[r] = accumulate ? _mm512_maskz_loadu_ps(m0, C + (size_t)r * ldc) : _mm512_setzero_ps();
    c1[r] = accumulate ? _mm512_maskz_loadu_ps(m1, C + (size_t)r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int k = 0; k < K; k++) {
    const __m512 b0 = _mm512_load_ps(Bp + (size_t)k * 32);
    const __m512 b1 = _mm512_load_ps(Bp + (size_t)k * 32 + 16);
    const float* a = A + k * ks;
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(a[r * rs]);
      c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
    }
  }
  _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
    _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, c1[r]);
  }
}

__attribute__((target("avx512f"))) void gemm_avx512(int M, const float* A, ptrdiff_t rs, ptrdiff_t ks, const PackedB& P,
                                                    int p0, int p1, float* C, int ldc, bool accumulate) {
  for (int p = p0; p < p1; p++) {
    const int ncols = std::min(32, P.N - p * 32);
    float* Cp = C + p * 32;
    // K in chunks of kKc so that the chunk of the panel stays in L1 across the row tiles
    for (int k0 = 0; k0 < P.K; k0 += kKc) {
      const int kc = std::min(kKc, P.K - k0);
      const float* Bk = P.panel(p) + (size_t)k0 * 32;
      const float* Ak = A + k0 * ks;
      const bool acc = accumulate || k0 > 0;
      int r = 0;
      for (; r + 8 <= M; r += 8) tile_avx512<8>(kc, Ak + r * rs, rs, ks, Bk, Cp + (size_t)r * ldc, ldc, ncols, acc);
      const float* Ar = Ak + r * rs;
      float* Cr = Cp + (size_t)r * ldc;
      switch (M - r) {
        case 7:
          tile_avx512<7>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 6:
          tile_avx512<6>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 5:
          tile_avx512<5>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 4:
          tile_avx512<4>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 3:
          tile_avx512<3>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 2:
          tile_avx512<2>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 1:
          tile_avx512<1>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        default:
          break;
      }
    }
  }
}

// AVX2 + FMA: NR = 16 (two ymm per row), MR ≤ 6 → 12 accumulators.
template <int MR>
__attribute__((target("avx2,fma"))) inline void tile_avx2(int K, const float* A, ptrdiff_t rs, ptrdiff_t ks,
                                                          const float* Bp, float* C, int ldc, int ncols,
                                                          bool accumulate) {
  alignas(32) int mask[16];
  for (int j = 0; j < 16; j++) mask[j] = j < ncols ? -1 : 0;
  const __m256i m0 = _mm256_load_si256((const __m256i*)mask);
  const __m256i m1 = _mm256_load_si256((const __m256i*)(mask + 8));
  __m256 c0[MR], c1[MR];
  _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
    c0[r] = accumulate ? _mm256_maskload_ps(C + (size_t)r * ldc, m0) : _mm256_setzero_ps();
    c1[r] = accumulate ? _mm256_maskload_ps(C + (size_t)r * ldc + 8, m1) : _mm256_setzero_ps();
  }
  for (int k = 0; k < K; k++) {
    const __m256 b0 = _mm256_load_ps(Bp + (size_t)k * 16);
    const __m256 b1 = _mm256_load_ps(Bp + (size_t)k * 16 + 8);
    const float* a = A + k * ks;
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
      const __m256 ar = _mm256_broadcast_ss(a + r * rs);
      c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
    }
  }
  _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
    _mm256_maskstore_ps(C + (size_t)r * ldc, m0, c0[r]);
    _mm256_maskstore_ps(C + (size_t)r * ldc + 8, m1, c1[r]);
  }
}

__attribute__((target("avx2,fma"))) void gemm_avx2(int M, const float* A, ptrdiff_t rs, ptrdiff_t ks, const PackedB& P,
                                                   int p0, int p1, float* C, int ldc, bool accumulate) {
  for (int p = p0; p < p1; p++) {
    const int ncols = std::min(16, P.N - p * 16);
    float* Cp = C + p * 16;
    // K in chunks of kKc so that the chunk of the panel stays in L1 across the row tiles
    for (int k0 = 0; k0 < P.K; k0 += kKc) {
      const int kc = std::min(kKc, P.K - k0);
      const float* Bk = P.panel(p) + (size_t)k0 * 16;
      const float* Ak = A + k0 * ks;
      const bool acc = accumulate || k0 > 0;
      int r = 0;
      for (; r + 6 <= M; r += 6) tile_avx2<6>(kc, Ak + r * rs, rs, ks, Bk, Cp + (size_t)r * ldc, ldc, ncols, acc);
      const float* Ar = Ak + r * rs;
      float* Cr = Cp + (size_t)r * ldc;
      switch (M - r) {
        case 5:
          tile_avx2<5>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 4:
          tile_avx2<4>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 3:
          tile_avx2<3>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 2:
          tile_avx2<2>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        case 1:
          tile_avx2<1>(kc, Ar, rs, ks, Bk, Cr, ldc, ncols, acc);
          break;
        default:
          break;
      }
    }
  }
}
#endif

// Portable: NR = 16, 4 rows at a time; the inner loop over the panel's 16 columns vectorises.
void gemm_portable(int M, const float* A, ptrdiff_t rs, ptrdiff_t ks, const PackedB& P, int p0, int p1, float* C,
                   int ldc, bool accumulate) {
  constexpr int NR = 16;
  for (int p = p0; p < p1; p++) {
    const float* Bp = P.panel(p);
    const int ncols = std::min(NR, P.N - p * NR);
    for (int r = 0; r < M; r++) {
      float acc[NR] = {0};
      const float* a = A + r * rs;
      for (int k = 0; k < P.K; k++) {
        const float ak = a[k * ks];
        const float* b = Bp + (size_t)k * NR;
        for (int j = 0; j < NR; j++) acc[j] += ak * b[j];
      }
      float* c = C + (size_t)r * ldc + p * NR;
      for (int j = 0; j < ncols; j++) c[j] = accumulate ? c[j] + acc[j] : acc[j];
    }
  }
}

}  // namespace

int gemm_panel_width() { return kIsa == Isa::Avx512 ? 32 : 16; }

const char* gemm_kernel_name() {
  switch (kIsa) {
    case Isa::Avx512:
      return "avx512 8x32";
    case Isa::Avx2:
      return "avx2 6x16";
    default:
      return "portable 1x16";
  }
}

void pack_alloc(PackedB& P, int K, int N) {
  const int NR = gemm_panel_width();
  const int panels = (N + NR - 1) / NR;
  if (P.K == K && P.N == N && P.NR == NR) return;
  P.K = K;
  P.N = N;
  P.NR = NR;
  P.panels = panels;
  P.data.resize((size_t)panels * K * NR);  // zero-filled: the padding past N stays 0
}

void pack_panels(PackedB& P, const float* src, int ld, bool transposed, int p0, int p1) {
  const int NR = P.NR;
  for (int p = p0; p < p1; p++) {
    float* dst = P.data.data() + (size_t)p * P.K * NR;
    const int n0 = p * NR, ncols = std::min(NR, P.N - n0);
    if (!transposed) {
      for (int k = 0; k < P.K; k++) std::memcpy(dst + (size_t)k * NR, src + (size_t)k * ld + n0, ncols * sizeof(float));
    } else {
      // B[k][n] = src[n·ld + k]: walk src rows (contiguous in k), scatter into the panel's column
      for (int j = 0; j < ncols; j++) {
        const float* s = src + (size_t)(n0 + j) * ld;
        for (int k = 0; k < P.K; k++) dst[(size_t)k * NR + j] = s[k];
      }
    }
  }
}

void gemm_packed(int M, const float* A, ptrdiff_t a_rs, ptrdiff_t a_ks, const PackedB& P, int p0, int p1, float* C,
                 int ldc, bool accumulate) {
  if (M <= 0 || p0 >= p1) return;
#ifdef LSTM_X86
  if (kIsa == Isa::Avx512) return gemm_avx512(M, A, a_rs, a_ks, P, p0, p1, C, ldc, accumulate);
  if (kIsa == Isa::Avx2) return gemm_avx2(M, A, a_rs, a_ks, P, p0, p1, C, ldc, accumulate);
#endif
  gemm_portable(M, A, a_rs, a_ks, P, p0, p1, C, ldc, accumulate);
}

}  // namespace lstm
