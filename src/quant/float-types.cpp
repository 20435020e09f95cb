// F32, F16 and BF16 rows: plain conversions (importance does not apply).
#include <cstring>

#include "edgeq/core/half.h"
#include "types.h"

namespace edgeq::quant {

// n may be 0 with null pointers (an empty tensor); memcpy must not see those.
void dequantize_row_f32(const void* src, float* dst, int64_t n) {
    if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void quantize_row_f32_ref(const float* src, void* dst, int64_t n) {
    if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void quantize_row_f32(const float* src, void* dst, int64_t n, const float*) {
    quantize_row_f32_ref(src, dst, n);
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
    fp16_to_fp32_row(static_cast<const uint16_t*>(src), dst, n);
}
void quantize_row_f16_ref(const float* src, void* dst, int64_t n) {
    fp32_to_fp16_row(src, static_cast<uint16_t*>(dst), n);
}
void quantize_row_f16(const float* src, void* dst, int64_t n, const float*) {
    quantize_row_f16_ref(src, dst, n);
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
    bf16_to_fp32_row(static_cast<const uint16_t*>(src), dst, n);
}
void quantize_row_bf16_ref(const float* src, void* dst, int64_t n) {
    fp32_to_bf16_row(src, static_cast<uint16_t*>(dst), n);
}
void quantize_row_bf16(const float* src, void* dst, int64_t n, const float*) {
    quantize_row_bf16_ref(src, dst, n);
}

}  // namespace edgeq::quant
