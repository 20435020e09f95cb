// The matmul driver. For now the reference path: each weight row converted to floats and
// dotted with each activation row in float; the kernels of edgeq/runtime/cpu/matmul.h
// replace it type by type.
#include "edgeq/runtime/cpu/matmul.h"

#include "edgeq/core/error.h"
#include "edgeq/quant/dtype.h"
#include "edgeq/quant/quantize.h"

namespace edgeq::cpu {

GgmlType activation_type(GgmlType weight) {
    return weight == GgmlType::F32 ? GgmlType::F32 : GgmlType::F32;
}

void quantize_activations(GgmlType act, const float* x, void* dst, int64_t n) {
    quantize_rows(act, x, dst, 1, n, nullptr, nullptr, "activations");
}

VecDotFn vec_dot(GgmlType, Isa) {
    return nullptr;
}

void matmul(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
            float* y, ThreadPool& pool, MatmulScratch&) {
    const DType& t = dtype(type);
    if (t.to_float == nullptr) fail("matmul: no kernel for {} weights", t.name);
    if (k % t.block_size != 0) fail("matmul: rows of {} values are not whole {} blocks", k, t.name);
    const size_t w_row = row_size(type, k);
    pool.parallel_for(n_out, 16, [&](int64_t begin, int64_t end, int) {
        std::vector<float> row(static_cast<size_t>(k));
        for (int64_t r = begin; r < end; ++r) {
            t.to_float(static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * w_row, row.data(),
                       k);
            for (int64_t i = 0; i < m; ++i) {
                const float* xi = x + i * k;
                double sum = 0;
                for (int64_t j = 0; j < k; ++j)
                    sum += static_cast<double>(row[static_cast<size_t>(j)]) * xi[j];
                y[i * n_out + r] = static_cast<float>(sum);
            }
        }
    });
}

}  // namespace edgeq::cpu
