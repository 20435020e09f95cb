// Helpers shared by the CPU kernel tests: the weight types with kernels, the ISAs this CPU
// runs, random quantized rows and the float value of an activation row.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "edgeq/core/cpu.h"
#include "edgeq/quant/dtype.h"
#include "edgeq/quant/quantize.h"
#include "edgeq/runtime/cpu/matmul.h"
#include "quant/blocks.h"
#include "runtime/cpu/vec-dot.h"
#include "test-random.h"

namespace edgeq::kernel_test {

inline const std::vector<GgmlType>& weight_types() {
    static const std::vector<GgmlType> types = {
        GgmlType::F32,   GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,   GgmlType::Q4_1,
        GgmlType::Q5_0,  GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::Q2_K,
        GgmlType::Q3_K,  GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,   GgmlType::IQ4_XS,
        GgmlType::TQ1_0, GgmlType::TQ2_0};
    return types;
}

// The ISAs this CPU supports, whatever EDGEQ_ISA says (the tests name each one explicitly).
inline std::vector<Isa> cpu_isas() {
    std::vector<Isa> isas = {Isa::scalar};
    const CpuFeatures& f = cpu_features();
    if (f.avx2 && f.fma && f.f16c) isas.push_back(Isa::avx2);
    if (f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl)
        isas.push_back(Isa::avx512);
    return isas;
}

inline std::string type_name(const ::testing::TestParamInfo<GgmlType>& info) {
    return std::string(dtype(info.param).name);
}

// n_rows rows of n random values (heavy-tailed, as trained weights), quantized by edgeq.
inline std::vector<uint8_t> random_weights(testing::Random& random, GgmlType type, int64_t n_rows,
                                           int64_t n) {
    const std::vector<float> x =
        random.heavy_tailed(static_cast<size_t>(n_rows), static_cast<size_t>(n), 0.02f);
    std::vector<uint8_t> w(row_size(type, n) * static_cast<size_t>(n_rows));
    quantize_rows(type, x.data(), w.data(), n_rows, n, nullptr, nullptr, "test weights");
    return w;
}

// The float values an activation row of `act` stands for.
inline std::vector<double> activation_values(GgmlType act, const uint8_t* a, int64_t n) {
    std::vector<double> v(static_cast<size_t>(n));
    if (act == GgmlType::F32) {
        const auto* f = reinterpret_cast<const float*>(a);
        for (int64_t j = 0; j < n; ++j) v[static_cast<size_t>(j)] = f[j];
    } else if (act == GgmlType::Q8_0) {
        const auto* b = reinterpret_cast<const cpu::ActBlockQ8*>(a);
        for (int64_t j = 0; j < n; ++j)
            v[static_cast<size_t>(j)] = static_cast<double>(b[j / 32].d) * b[j / 32].qs[j % 32];
    } else {
        const auto* b = reinterpret_cast<const quant::BlockQ8_K*>(a);
        for (int64_t j = 0; j < n; ++j)
            v[static_cast<size_t>(j)] = static_cast<double>(b[j / 256].d) * b[j / 256].qs[j % 256];
    }
    return v;
}

// The scale of the float rounding in a dot product of w (dequantized weights, blocks of
// `block`) with a: sum of (|w_j| + max |w| of j's block) |a_j|. Kernels sum quants with their
// offsets or minimums and take those off afterwards (Q4_0's q - 8, Q4_K's minimums, TQ2_0's
// q - 1), so their roundings scale with the block's range, not only with |w_j|.
inline double rounding_scale(const std::vector<float>& w, const double* a, int64_t block) {
    double sum = 0;
    for (size_t b = 0; b < w.size(); b += static_cast<size_t>(block)) {
        double amax = 0;
        for (size_t j = b; j < b + static_cast<size_t>(block); ++j)
            amax = std::max(amax, std::fabs(double{w[j]}));
        for (size_t j = b; j < b + static_cast<size_t>(block); ++j)
            sum += (std::fabs(double{w[j]}) + amax) * std::fabs(a[j]);
    }
    return sum;
}

}  // namespace edgeq::kernel_test
