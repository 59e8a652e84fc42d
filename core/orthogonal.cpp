// Orthogonal initialisation (spec §3.2) through LAPACK's Householder QR from OpenBLAS.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"

extern "C" {
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
             int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau, double* work,
             const int* lwork, int* info);
}

namespace rwkv {

Tensor orthogonal(int64_t rows, int64_t cols, double gain, Generator& generator) {
  RWKV_CHECK(rows > 0 && cols > 0, "orthogonal: shape [", rows, ", ", cols, "] must be positive");
  RWKV_CHECK(rows < (int64_t{1} << 31) && cols < (int64_t{1} << 31), "orthogonal: shape too large");
  Tensor gaussian = Tensor::empty({rows, cols});
  generator.normal_(gaussian, 0.0f, 1.0f);
  const float* g = gaussian.data<float>();

  // Work on the tall orientation: m >= n. LAPACK is column-major, so the row-major [rows, cols] buffer is the
  // column-major [cols, rows] matrix, i.e. already transposed.
  const bool transpose = rows < cols;
  const int m = static_cast<int>(std::max(rows, cols));
  const int n = static_cast<int>(std::min(rows, cols));
  std::vector<double> a(static_cast<size_t>(m) * n);  // column-major m x n
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double value = g[r * cols + c];
      if (transpose) {
        a[static_cast<size_t>(r) * m + static_cast<size_t>(c)] = value;  // tall matrix = G^T: (c, r)
      } else {
        a[static_cast<size_t>(c) * m + static_cast<size_t>(r)] = value;  // tall matrix = G: (r, c)
      }
    }
  }
  std::vector<double> tau(static_cast<size_t>(n));
  int info = 0, lwork = -1;
  double query = 0;
  dgeqrf_(&m, &n, a.data(), &m, tau.data(), &query, &lwork, &info);
  lwork = std::max(1, static_cast<int>(query));
  std::vector<double> work(static_cast<size_t>(lwork));
  dgeqrf_(&m, &n, a.data(), &m, tau.data(), work.data(), &lwork, &info);
  RWKV_CHECK(info == 0, "orthogonal: dgeqrf failed with info ", info);
  std::vector<double> diagonal_sign(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) {
    const double r_jj = a[static_cast<size_t>(j) * m + static_cast<size_t>(j)];
    diagonal_sign[static_cast<size_t>(j)] = r_jj < 0 ? -1.0 : 1.0;  // torch: d.sign(), and 0 never occurs
  }
  lwork = -1;
  dorgqr_(&m, &n, &n, a.data(), &m, tau.data(), &query, &lwork, &info);
  lwork = std::max(1, static_cast<int>(query));
  work.assign(static_cast<size_t>(lwork), 0.0);
  dorgqr_(&m, &n, &n, a.data(), &m, tau.data(), work.data(), &lwork, &info);
  RWKV_CHECK(info == 0, "orthogonal: dorgqr failed with info ", info);

  Tensor out = Tensor::empty({rows, cols});
  float* o = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      // Q is column-major m x n; element (i, j) with j the column whose sign we fix.
      const int64_t i = transpose ? c : r;
      const int64_t j = transpose ? r : c;
      const double q = a[static_cast<size_t>(j) * m + static_cast<size_t>(i)] * diagonal_sign[static_cast<size_t>(j)];
      o[r * cols + c] = static_cast<float>(q * gain);
    }
  }
  return out;
}

}  // namespace rwkv
