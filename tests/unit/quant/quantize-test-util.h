// Helpers shared by the quantizer tests: random rows, quantize / dequantize one row, and the
// scale fields of the block formats read back from their bytes (written here from the ggml
// layouts, not taken from src/quant).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/half-reference.h"
#include "edgeq/quant/dtype.h"
#include "test-random.h"

namespace edgeq::quant_test {

inline bool report_enabled() {
    const char* env = std::getenv("EDGEQ_TEST_REPORT");
    return env != nullptr && *env != '\0' && *env != '0';
}

inline std::vector<const DType*> quantizable_types() {
    std::vector<const DType*> types;
    for (const DType& t : all_dtypes()) {
        if (t.quantize_row != nullptr) types.push_back(&t);
    }
    return types;
}

inline std::string type_name(const ::testing::TestParamInfo<const DType*>& info) {
    return std::string(info.param->name);
}

// Quantizes one row (importance may be null) with the table's quantize_row, checking that
// exactly row_size bytes are written, and returns the bytes.
inline std::vector<uint8_t> quantize(const DType& t, const float* x, int64_t n,
                                     const float* importance) {
    const size_t n_bytes = row_size(t.type, n);
    std::vector<uint8_t> bytes(n_bytes + 16, 0xa5);
    t.quantize_row(x, bytes.data(), n, importance);
    for (size_t i = n_bytes; i < bytes.size(); ++i) {
        EXPECT_EQ(bytes[i], 0xa5) << t.name << ": byte " << i << " written past the row";
    }
    bytes.resize(n_bytes);
    return bytes;
}

inline std::vector<float> dequantize(const DType& t, const std::vector<uint8_t>& bytes, int64_t n) {
    std::vector<float> y(static_cast<size_t>(n));
    t.to_float(bytes.data(), y.data(), n);
    return y;
}

// ---- scale fields read back from the bytes ----

inline float f16_at(const uint8_t* p, size_t offset) {
    uint16_t h;
    std::memcpy(&h, p + offset, 2);
    return testing::ref_fp16_to_fp32(h);
}

// The six-bit scale of sub-block j in the 12 scale bytes of Q4_K / Q5_K.
inline int k4_scale(const uint8_t* s, int j) {
    return j < 4 ? (s[j] & 63) : ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
}

// The signed scale of sub-block j (of 16) of Q3_K.
inline int q3_k_scale(const uint8_t* s, int j) {
    const int low = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

// ---- test data ----

enum class Data { gaussian, heavy_tailed };

inline const char* data_name(Data d) {
    return d == Data::gaussian ? "gaussian" : "heavy-tailed";
}

// n_rows rows of n values with standard deviation sigma. Rows whose largest magnitude would
// pass 30000 are scaled down to it: the formats store F16 scales and minimums, and values
// near 65504 (the largest F16) cannot be stored by some of them (TQ1_0/TQ2_0 store max|x|,
// Q4_1/Q5_1 the minimum).
inline std::vector<float> make_rows(testing::Random& random, Data kind, int64_t n_rows, int64_t n,
                                    float sigma) {
    std::vector<float> x =
        kind == Data::gaussian
            ? random.normal(static_cast<size_t>(n_rows * n), sigma)
            : random.heavy_tailed(static_cast<size_t>(n_rows), static_cast<size_t>(n), sigma);
    constexpr float k_largest = 30000.0f;
    for (int64_t r = 0; r < n_rows; ++r) {
        float* row = x.data() + r * n;
        float amax = 0;
        for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(row[i]));
        if (amax > k_largest) {
            for (int64_t i = 0; i < n; ++i) row[i] *= k_largest / amax;
        }
    }
    return x;
}

}  // namespace edgeq::quant_test
