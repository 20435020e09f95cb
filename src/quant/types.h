// The conversion functions of each format, one .cpp per format; dtype.cpp lists them in the
// dtype table. Signatures follow edgeq/quant/dtype.h: n is a multiple of the block size.
#pragma once

#include <cstdint>

namespace edgeq::quant {

#define EDGEQ_DECLARE_FORMAT(t)                                          \
    void dequantize_row_##t(const void* src, float* dst, int64_t n);     \
    void quantize_row_##t##_ref(const float* src, void* dst, int64_t n); \
    void quantize_row_##t(const float* src, void* dst, int64_t n, const float* importance);

EDGEQ_DECLARE_FORMAT(f32)
EDGEQ_DECLARE_FORMAT(f16)
EDGEQ_DECLARE_FORMAT(bf16)
EDGEQ_DECLARE_FORMAT(q4_0)
EDGEQ_DECLARE_FORMAT(q4_1)
EDGEQ_DECLARE_FORMAT(q5_0)
EDGEQ_DECLARE_FORMAT(q5_1)
EDGEQ_DECLARE_FORMAT(q8_0)
EDGEQ_DECLARE_FORMAT(q2_k)
EDGEQ_DECLARE_FORMAT(q3_k)
EDGEQ_DECLARE_FORMAT(q4_k)
EDGEQ_DECLARE_FORMAT(q5_k)
EDGEQ_DECLARE_FORMAT(q6_k)
EDGEQ_DECLARE_FORMAT(q8_k)
EDGEQ_DECLARE_FORMAT(tq1_0)
EDGEQ_DECLARE_FORMAT(tq2_0)
EDGEQ_DECLARE_FORMAT(iq4_nl)
EDGEQ_DECLARE_FORMAT(iq4_xs)

#undef EDGEQ_DECLARE_FORMAT

}  // namespace edgeq::quant
