#include "kernels.h"

#include <cmath>
#include <cstring>

#include "fastmath.h"

// Runtime-safe vectorisation: each hot kernel is compiled for x86-64-v4 (AVX-512), x86-64-v3
// (AVX2 + FMA) and the baseline, and the loader picks the clone for the CPU (GNU ifunc).
// No -march=native: the addon built on one machine runs on any x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(LSTM_NO_CLONES)
#define LSTM_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LSTM_KERNEL
#endif

namespace lstm {

// One batch row of the forward cell; restrict-qualified parameters let GCC vectorise over j.
static LSTM_INLINE void cell_forward_row(int nu, float* __restrict I, float* __restrict F, float* __restrict G,
                                         float* __restrict O, const float* __restrict c_prev, float* __restrict c,
                                         float* __restrict tanh_c, float* __restrict h) {
  for (int j = 0; j < nu; j++) {
    float i = sigmoid_approx(I[j]);
    float f = sigmoid_approx(F[j]);
    float g = tanh_approx(G[j]);
    float o = sigmoid_approx(O[j]);
    float cj = f * c_prev[j] + i * g;
    float t = tanh_approx(cj);
    I[j] = i;
    F[j] = f;
    G[j] = g;
    O[j] = o;
    c[j] = cj;
    tanh_c[j] = t;
    h[j] = o * t;
  }
}

LSTM_KERNEL
void lstm_cell_forward(int B, int nu, float* gates, int ldg, int gate_stride, const float* c_prev, float* c,
                       float* tanh_c, float* h, int ldh) {
  const size_t S = gate_stride;
  for (int b = 0; b < B; b++) {
    float* a = gates + (size_t)b * ldg;
    const size_t o = (size_t)b * ldh;
    cell_forward_row(nu, a, a + S, a + 2 * S, a + 3 * S, c_prev + o, c + o, tanh_c + o, h + o);
  }
}

static LSTM_INLINE void cell_backward_row(int nu, const float* __restrict I, const float* __restrict F,
                                          const float* __restrict G, const float* __restrict O,
                                          const float* __restrict c_prev, const float* __restrict tanh_c,
                                          const float* __restrict dh, float* __restrict dc, float* __restrict dI,
                                          float* __restrict dF, float* __restrict dG, float* __restrict dO) {
  for (int j = 0; j < nu; j++) {
    float i = I[j], f = F[j], g = G[j], o = O[j], t = tanh_c[j];
    float d_h = dh[j];
    // H = O ⊙ tanh(C): the path into C, plus the carry from step t+1
    float d_c = d_h * o * (1.0f - t * t) + dc[j];
    dO[j] = d_h * t * o * (1.0f - o);  // σ' = σ(1 − σ)
    dI[j] = d_c * g * i * (1.0f - i);
    dG[j] = d_c * i * (1.0f - g * g);  // tanh' = 1 − tanh²
    dF[j] = d_c * c_prev[j] * f * (1.0f - f);
    dc[j] = d_c * f;  // C_t = F ⊙ C_{t−1} + I ⊙ C~
  }
}

LSTM_KERNEL
void lstm_cell_backward(int B, int nu, const float* gates, float* dA, int ldg, int gate_stride, const float* c_prev,
                        const float* tanh_c, const float* dh, float* dc, int ldh) {
  const size_t S = gate_stride;
  for (int b = 0; b < B; b++) {
    const float* a = gates + (size_t)b * ldg;
    float* d = dA + (size_t)b * ldg;
    const size_t o = (size_t)b * ldh;
    cell_backward_row(nu, a, a + S, a + 2 * S, a + 3 * S, c_prev + o, tanh_c + o, dh + o, dc + o, d, d + S, d + 2 * S,
                      d + 3 * S);
  }
}

LSTM_KERNEL
void embed_gather(int N, int n, const int32_t* tok, const float* W, int ldw, const float* bias, float* out, int ldo) {
  for (int r = 0; r < N; r++) {
    const float* __restrict w = W + (size_t)tok[r] * ldw;
    const float* __restrict bb = bias;
    float* __restrict o = out + (size_t)r * ldo;
    for (int j = 0; j < n; j++) o[j] = w[j] + bb[j];
  }
}

LSTM_KERNEL
void embed_scatter_add(int N, int n, const int32_t* tok, const float* dA, int lda, float* dW, int ldw) {
  for (int r = 0; r < N; r++) {
    const float* __restrict d = dA + (size_t)r * lda;
    float* __restrict w = dW + (size_t)tok[r] * ldw;
    for (int j = 0; j < n; j++) w[j] += d[j];
  }
}

LSTM_KERNEL
void broadcast_rows(int N, int n, const float* bias, float* out, int ldo) {
  for (int r = 0; r < N; r++) {
    const float* __restrict bb = bias;
    float* __restrict o = out + (size_t)r * ldo;
    for (int j = 0; j < n; j++) o[j] = bb[j];
  }
}

LSTM_KERNEL
void column_sums(int N, int n, const float* A, int lda, float* out) {
  float* __restrict s = out;
  for (int j = 0; j < n; j++) s[j] = 0.0f;
  for (int r = 0; r < N; r++) {
    const float* __restrict a = A + (size_t)r * lda;
    for (int j = 0; j < n; j++) s[j] += a[j];
  }
}

void copy_block(int rows, int n, const float* src, int lds, float* dst, int ldd) {
  for (int r = 0; r < rows; r++) std::memcpy(dst + (size_t)r * ldd, src + (size_t)r * lds, n * sizeof(float));
}

LSTM_KERNEL
double softmax_cross_entropy(int N, int V, const float* logits, const int32_t* y, float* dlogits, float scale) {
  double loss = 0.0;
  const float invN = scale;
  for (int r = 0; r < N; r++) {
    const float* z = logits + (size_t)r * V;
    float* d = dlogits + (size_t)r * V;
    float zmax = z[0];
    for (int v = 1; v < V; v++) zmax = z[v] > zmax ? z[v] : zmax;
    const float zy = z[y[r]];
    float sum = 0.0f;
    for (int v = 0; v < V; v++) {
      float e = exp_approx(z[v] - zmax);
      d[v] = e;
      sum += e;
    }
    // −log softmax(z)[y] = log Σ e^{z−max} + max − z_y
    loss += (double)std::log(sum) + (double)(zmax - zy);
    const float k = invN / sum;
    for (int v = 0; v < V; v++) d[v] *= k;
    d[y[r]] -= invN;
  }
  return loss;
}

LSTM_KERNEL
double sum_squares(size_t n, const float* x) {
  // 16 float partial sums (vectorised), flushed to double every block to bound rounding error
  double total = 0.0;
  const size_t block = 4096;
  for (size_t start = 0; start < n; start += block) {
    size_t end = start + block < n ? start + block : n;
    float acc[16] = {0};
    size_t i = start;
    for (; i + 16 <= end; i += 16)
      for (int k = 0; k < 16; k++) acc[k] += x[i + k] * x[i + k];
    double s = 0.0;
    for (; i < end; i++) s += (double)x[i] * x[i];
    for (int k = 0; k < 16; k++) s += acc[k];
    total += s;
  }
  return total;
}

LSTM_KERNEL
void scale_inplace(size_t n, float* x, float s) {
  for (size_t i = 0; i < n; i++) x[i] *= s;
}

LSTM_KERNEL
void axpy(size_t n, float a, const float* x, float* y) {
  const float* __restrict xs = x;
  float* __restrict ys = y;
  for (size_t i = 0; i < n; i++) ys[i] += a * xs[i];
}

LSTM_KERNEL
void vec_mat_accumulate(int K, int N, const float* x, const float* W, float* out) {
  float* __restrict o = out;
  for (int k = 0; k < K; k++) {
    const float xk = x[k];
    const float* __restrict w = W + (size_t)k * N;
    for (int j = 0; j < N; j++) o[j] += xk * w[j];
  }
}

const char* kernel_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return "x86-64-v4 (avx512)";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "x86-64-v3 (avx2+fma)";
  return "x86-64 baseline";
#else
  return "generic";
#endif
}

}  // namespace lstm
