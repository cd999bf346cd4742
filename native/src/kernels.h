// Elementwise and memory-bound kernels of the fused LSTM (everything that is not a GEMM).
// Row-major; "rows" are (time, batch) pairs in time-major order, row = t·B + b.
// Gate blocks of a (·, 4H) gate row, in the engine's internal order: i | f | g | o
// (input gate, forget gate, candidate cell C~, output gate) — tfjs's i, f, c, o.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lstm {

// The elementwise kernels work on a column range of their operands: pointers point at the first
// column (hidden unit j0, or column j0 of gate block 0), `nu` columns are processed, rows are `ld*`
// floats apart. This lets each thread own a slice of hidden units.

// Forward of one time step for B rows and nu hidden units. In: gates = pre-activations, gate block
// k of unit j at gates[k·gate_stride + j] (gate_stride = H), rows ldg (= 4H) apart; c_prev.
// Out: gates replaced by the activations I, F, C~, O; c = F⊙c_prev + I⊙C~; tanh_c = tanh(c);
// h = O⊙tanh_c. c_prev, c, tanh_c, h have rows ldh (= H) apart.
void lstm_cell_forward(int B, int nu, float* gates, int ldg, int gate_stride, const float* c_prev, float* c,
                       float* tanh_c, float* h, int ldh);

// Backward of one time step. In: gates (activations), c_prev, tanh_c, dh = ∂L/∂H_t, dc = ∂L/∂C_t
// from step t+1. Out: dA = ∂L/∂(pre-activations) (laid out as gates); dc := ∂L/∂C_{t−1} = dC_t ⊙ F.
void lstm_cell_backward(int B, int nu, const float* gates, float* dA, int ldg, int gate_stride, const float* c_prev,
                        const float* tanh_c, const float* dh, float* dc, int ldh);

// out[r, 0:n] = W[tok[r], 0:n] + bias[0:n] for r < N — the input projection of one-hot inputs as a
// row gather (W rows ldw apart, out rows ldo apart).
void embed_gather(int N, int n, const int32_t* tok, const float* W, int ldw, const float* bias, float* out, int ldo);
// dW[tok[r], 0:n] += dA[r, 0:n] — its gradient as a row scatter-add.
void embed_scatter_add(int N, int n, const int32_t* tok, const float* dA, int lda, float* dW, int ldw);

// out[r, 0:n] = bias[0:n] for r < N.
void broadcast_rows(int N, int n, const float* bias, float* out, int ldo);
// out[0:n] = Σ_r A[r, 0:n] (bias gradients).
void column_sums(int N, int n, const float* A, int lda, float* out);
// dst[r, 0:n] = src[r, 0:n] for r < rows.
void copy_block(int rows, int n, const float* src, int lds, float* dst, int ldd);

// Row softmax cross-entropy over N rows of V logits. Returns Σ_r −log softmax(logits_r)[y_r]
// (double); writes dlogits = (softmax − onehot(y)) · scale (scale = 1 / rows of the whole mean).
// logits and dlogits may be the same buffer.
double softmax_cross_entropy(int N, int V, const float* logits, const int32_t* y, float* dlogits, float scale);

// Σ x²
double sum_squares(size_t n, const float* x);
// x *= s
void scale_inplace(size_t n, float* x, float s);
// y += a·x
void axpy(size_t n, float a, const float* x, float* y);
// out[0:N] += x[0:K] · W (K, N) — a vector-matrix product for batch-1 generation.
void vec_mat_accumulate(int K, int N, const float* x, const float* W, float* out);

// The clone of the kernels that runs on this CPU ("avx512", "avx2", or "baseline").
const char* kernel_isa();

}  // namespace lstm
