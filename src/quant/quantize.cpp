#include "edgeq/quant/quantize.h"

#include <algorithm>
#include <cmath>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

constexpr float k_f16_max = 65504.0f;

// Values must be finite; for F16 and the block formats (whose scales and minimums are F16)
// they must also lie within F16's range, or the result would hold infinities.
void check_values(const float* row, int64_t n, float limit, const DType& t, const std::string& what,
                  int64_t row_index) {
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(row[i]) || std::fabs(row[i]) > limit) {
            fail("{}: row {} column {} holds {}, which {} cannot store (|x| must be finite{})",
                 what, row_index, i, row[i], t.name, limit < INFINITY ? " and at most 65504" : "");
        }
    }
}

}  // namespace

bool can_quantize(GgmlType type) {
    return dtype(type).quantize_row != nullptr;
}

bool can_dequantize(GgmlType type) {
    return dtype(type).to_float != nullptr;
}

void quantize_rows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                   const float* importance, ThreadPool* pool, const std::string& what,
                   int64_t first_row) {
    const DType& t = dtype(type);
    if (t.quantize_row == nullptr) fail("{}: edgeq cannot quantize to {}", what, t.name);
    if (n_per_row <= 0 || n_per_row % t.block_size != 0) {
        fail("{}: rows of {} values cannot be stored as {}, whose blocks hold {} values", what,
             n_per_row, t.name, t.block_size);
    }
    const size_t dst_row = row_size(type, n_per_row);
    const float limit = t.quantized || type == GgmlType::F16 ? k_f16_max : INFINITY;
    auto work = [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
            const float* row = src + r * n_per_row;
            check_values(row, n_per_row, limit, t, what, first_row + r);
            t.quantize_row(row, static_cast<uint8_t*>(dst) + static_cast<size_t>(r) * dst_row,
                           n_per_row, importance);
        }
    };
    // Chunks of about 64k values keep every thread busy without much scheduling.
    const int64_t grain = std::max<int64_t>(1, 65536 / n_per_row);
    if (pool == nullptr) {
        work(0, n_rows, 0);
    } else {
        pool->parallel_for(n_rows, grain, work);
    }
}

void to_float(GgmlType type, const void* src, float* dst, int64_t n) {
    const DType& t = dtype(type);
    if (t.to_float == nullptr) fail("edgeq cannot convert {} to float", t.name);
    if (n % t.block_size != 0) {
        fail("{} values cannot be read as {}, whose blocks hold {} values", n, t.name,
             t.block_size);
    }
    t.to_float(src, dst, n);
}

}  // namespace edgeq
