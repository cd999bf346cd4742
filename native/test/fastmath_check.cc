// Accuracy of the vectorisable exp / sigmoid / tanh of native/src/fastmath.h against double
// precision libm, on a dense grid of [-30, 30]. Run by native/scripts/sanitize.sh, or alone:
//   g++ -std=c++17 -O2 native/test/fastmath_check.cc -o /tmp/fastmath_check && /tmp/fastmath_check
#include <cmath>
#include <cstdio>

#include "../src/fastmath.h"

int main() {
  double sig_abs = 0, tanh_abs = 0, tanh_rel_small = 0, exp_rel = 0;
  for (double x = -30; x <= 30; x += 1e-5) {
    const float f = (float)x;
    const double s = 1 / (1 + std::exp(-(double)f)), t = std::tanh((double)f);
    sig_abs = std::fmax(sig_abs, std::fabs(lstm::sigmoid_approx(f) - s));
    tanh_abs = std::fmax(tanh_abs, std::fabs(lstm::tanh_approx(f) - t));
    if (std::fabs(f) < 0.625f && f != 0)
      tanh_rel_small = std::fmax(tanh_rel_small, std::fabs(lstm::tanh_approx(f) - t) / std::fabs(t));
    exp_rel = std::fmax(exp_rel, std::fabs(lstm::exp_approx(f) - std::exp((double)f)) / std::exp((double)f));
  }
  // saturation and the clamped range
  const bool ends = lstm::sigmoid_approx(-200.f) >= 0 && lstm::sigmoid_approx(-200.f) < 1e-30f &&
                    lstm::sigmoid_approx(200.f) == 1.0f && lstm::tanh_approx(50.f) == 1.0f &&
                    lstm::tanh_approx(-50.f) == -1.0f && std::isfinite(lstm::exp_approx(1000.f)) &&
                    lstm::exp_approx(-1000.f) >= 0;
  std::printf("max abs error: sigmoid %.3g, tanh %.3g; max rel error: tanh (|x| < 0.625) %.3g, exp %.3g; ends %s\n",
              sig_abs, tanh_abs, tanh_rel_small, exp_rel, ends ? "ok" : "WRONG");
  const double ulp = 5.96e-8;  // 2^-24
  const bool ok = sig_abs < 3 * ulp && tanh_abs < 3 * ulp && tanh_rel_small < 3 * ulp && exp_rel < 3 * ulp && ends;
  std::printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
