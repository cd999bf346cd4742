#include "model_api.h"

#include <cstring>
#include <stdexcept>

namespace lstm {

Layout make_layout(const Config& cfg) {
  if (cfg.vocab < 1 || cfg.hidden < 1 || cfg.layers < 1)
    throw std::invalid_argument("vocab, hidden and layers must be >= 1");
  if (cfg.kind == Kind::Scratch && cfg.layers != 1) throw std::invalid_argument("the scratch kind has exactly 1 layer");
  const int V = cfg.vocab, H = cfg.hidden, G = 4 * H;
  Layout lo;
  size_t off = 0;
  for (int l = 0; l < cfg.layers; l++) {
    Layout::Layer L;
    L.inputs = l == 0 ? V : H;
    L.Wx = off;
    off += (size_t)L.inputs * G;
    L.Wh = off;
    off += (size_t)H * G;
    L.b = off;
    off += G;
    lo.layers.push_back(L);
  }
  lo.Wq = off;
  off += (size_t)H * V;
  lo.bq = off;
  off += V;
  lo.size = off;

  if (cfg.kind == Kind::Scratch) {
    // scratch names are in i, f, o, c order; internal column blocks are i, f, g(=c), o
    const Layout::Layer& L0 = lo.layers[0];
    const struct {
      const char* g;
      int block;
    } gates[] = {{"i", 0}, {"f", 1}, {"o", 3}, {"c", 2}};
    for (const auto& gate : gates) {
      const size_t col = (size_t)gate.block * H;
      lo.views.push_back({std::string("W_x") + gate.g, {V, H}, L0.Wx + col, V, H, G});
      lo.views.push_back({std::string("W_h") + gate.g, {H, H}, L0.Wh + col, H, H, G});
      lo.views.push_back({std::string("b_") + gate.g, {H}, L0.b + col, 1, H, H});
    }
    lo.views.push_back({"W_hq", {H, V}, lo.Wq, H, V, V});
    lo.views.push_back({"b_q", {V}, lo.bq, 1, V, V});
  } else {
    for (int l = 0; l < cfg.layers; l++) {
      const Layout::Layer& L = lo.layers[l];
      const std::string p = "lstm_l" + std::to_string(l) + "/";
      lo.views.push_back({p + "kernel", {L.inputs, G}, L.Wx, L.inputs, G, G});
      lo.views.push_back({p + "recurrent_kernel", {H, G}, L.Wh, H, G, G});
      lo.views.push_back({p + "bias", {G}, L.b, 1, G, G});
    }
    lo.views.push_back({"dense/kernel", {H, V}, lo.Wq, H, V, V});
    lo.views.push_back({"dense/bias", {V}, lo.bq, 1, V, V});
  }
  return lo;
}

void copy_view(const View& v, const float* src, int lds, float* dst, int ldd) {
  for (int r = 0; r < v.rows; r++)
    std::memcpy(dst + (size_t)r * ldd, src + (size_t)r * lds, (size_t)v.cols * sizeof(float));
}

const View* ModelApi::find_view(const std::string& name) const {
  for (const View& v : views())
    if (v.name == name) return &v;
  return nullptr;
}

double ModelApi::train_batches(const int32_t* X, const int32_t* Y, int batches, int B, int T, bool reset_first,
                               bool reset_each, float lr, float theta) {
  if (batches < 1) throw std::invalid_argument("batches must be >= 1");
  const size_t n = (size_t)B * T;
  double sum = 0.0;
  for (int k = 0; k < batches; k++)
    sum += step(X + k * n, Y + k * n, B, T, k == 0 ? reset_first : reset_each, true, lr, theta).loss;
  return sum / batches;
}

}  // namespace lstm
