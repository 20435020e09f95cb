// The reference dot products: for each weight type, the integer dot product of the weight
// quants with the activation quants, block by block, times the blocks' scales. Every SIMD
// kernel is tested against these; they are also what runs where no SIMD kernel exists.
#include <cmath>
#include <cstring>

#include "../../quant/blocks.h"
#include "edgeq/core/half.h"
#include "vec-dot.h"

namespace edgeq::cpu {
namespace {

using namespace edgeq::quant;

// ---- activations ---------------------------------------------------------------------------

void quantize_q8(const float* x, void* dst, int64_t n) {
    auto* out = static_cast<ActBlockQ8*>(dst);
    for (int64_t b = 0; b < n / 32; ++b, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d != 0 ? 127 / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            const int q = static_cast<int>(std::lrintf(x[j] * id));
            out[b].qs[j] = static_cast<int8_t>(q);
            sum += q;
        }
        out[b].d = d;
        out[b].sum = sum;
    }
}

// As edgeq's Q8_K quantizer (src/quant/q8_k.cpp): the value of largest magnitude maps to -127.
void quantize_q8_k(const float* x, void* dst, int64_t n) {
    auto* out = static_cast<BlockQ8_K*>(dst);
    for (int64_t b = 0; b < n / k_qk_k; ++b, x += k_qk_k) {
        float amax = 0;
        float max = 0;
        for (int j = 0; j < k_qk_k; ++j) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        if (amax == 0) {
            std::memset(&out[b], 0, sizeof(BlockQ8_K));
            continue;
        }
        const float iscale = -127 / max;
        for (int j = 0; j < k_qk_k; ++j) {
            const long q = std::lrintf(iscale * x[j]);
            out[b].qs[j] = static_cast<int8_t>(q > 127 ? 127 : (q < -127 ? -127 : q));
        }
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += out[b].qs[16 * g + i];
            out[b].bsums[g] = static_cast<int16_t>(sum);
        }
        out[b].d = 1 / iscale;
    }
}

// ---- 32-value formats with ActBlockQ8 activations -------------------------------------------

uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

void dot_q4_0(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_0*>(w);
    const auto* y = static_cast<const ActBlockQ8*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        int dot = 0;
        for (int j = 0; j < 16; ++j) {
            dot += ((x[b].qs[j] & 0x0f) - 8) * y[b].qs[j];
            dot += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot);
    }
    *out = sum;
}

void dot_q4_1(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_1*>(w);
    const auto* y = static_cast<const ActBlockQ8*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        int dot = 0;
        for (int j = 0; j < 16; ++j) {
            dot += (x[b].qs[j] & 0x0f) * y[b].qs[j];
            dot += (x[b].qs[j] >> 4) * y[b].qs[j + 16];
        }
        // (d q + m) summed against the activations: d * dot + m * sum(activations).
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot) +
               fp16_to_fp32(x[b].m) * y[b].d * static_cast<float>(y[b].sum);
    }
    *out = sum;
}

void dot_q5_0(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_0*>(w);
    const auto* y = static_cast<const ActBlockQ8*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        const uint32_t qh = load_u32(x[b].qh);
        int dot = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = (x[b].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
            const int hi = (x[b].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
            dot += (lo - 16) * y[b].qs[j] + (hi - 16) * y[b].qs[j + 16];
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot);
    }
    *out = sum;
}

void dot_q5_1(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_1*>(w);
    const auto* y = static_cast<const ActBlockQ8*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        const uint32_t qh = load_u32(x[b].qh);
        int dot = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = (x[b].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
            const int hi = (x[b].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
            dot += lo * y[b].qs[j] + hi * y[b].qs[j + 16];
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot) +
               fp16_to_fp32(x[b].m) * y[b].d * static_cast<float>(y[b].sum);
    }
    *out = sum;
}

void dot_q8_0(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ8_0*>(w);
    const auto* y = static_cast<const ActBlockQ8*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        int dot = 0;
        for (int j = 0; j < 32; ++j) dot += x[b].qs[j] * y[b].qs[j];
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot);
    }
    *out = sum;
}

void dot_iq4_nl(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4_NL*>(w);
    const auto* y = static_cast<const ActBlockQ8*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        int dot = 0;
        for (int j = 0; j < 16; ++j) {
            dot += k_iq4_grid[x[b].qs[j] & 0x0f] * y[b].qs[j];
            dot += k_iq4_grid[x[b].qs[j] >> 4] * y[b].qs[j + 16];
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot);
    }
    *out = sum;
}

// ---- 256-value formats with Q8_K activations ------------------------------------------------

// The (scale, min) pair of sub-block j of Q4_K / Q5_K (see src/quant/k-scales.h).
void scale_min_k4(const uint8_t* q, int j, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

void dot_q2_k(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ2_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        int sumi = 0;  // sum over sub-blocks of scale * dot(q, a)
        int summ = 0;  // sum over sub-blocks of min * sum(a)
        for (int g = 0; g < 16; ++g) {
            int dot = 0;
            for (int i = 0; i < 16; ++i) {
                const int v = 16 * g + i;
                const int q = (x[b].qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
                dot += q * y[b].qs[v];
            }
            sumi += (x[b].scales[g] & 0x0f) * dot;
            summ += (x[b].scales[g] >> 4) * y[b].bsums[g];
        }
        sum += y[b].d * (fp16_to_fp32(x[b].d) * static_cast<float>(sumi) -
                         fp16_to_fp32(x[b].dmin) * static_cast<float>(summ));
    }
    *out = sum;
}

int q3_k_scale(const uint8_t* scales, int j) {
    const int low = j < 8 ? scales[j] & 0x0f : scales[j - 8] >> 4;
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

void dot_q3_k(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ3_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        int sumi = 0;
        for (int g = 0; g < 16; ++g) {
            int dot = 0;
            for (int i = 0; i < 16; ++i) {
                const int v = 16 * g + i;
                const int low = (x[b].qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
                const int high = (x[b].hmask[v % 32] >> (v / 32)) & 1;
                dot += (low - (high ? 0 : 4)) * y[b].qs[v];
            }
            sumi += q3_k_scale(x[b].scales, g) * dot;
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(sumi);
    }
    *out = sum;
}

template <bool high_bit>
float dot_q45_k_block(const uint16_t d16, const uint16_t dmin16, const uint8_t* scales,
                      const uint8_t* qs, const uint8_t* qh, const BlockQ8_K& y) {
    int sumi = 0;
    int summ = 0;
    for (int j = 0; j < 8; ++j) {
        int sc = 0;
        int m = 0;
        scale_min_k4(scales, j, sc, m);
        int dot = 0;
        for (int l = 0; l < 32; ++l) {
            int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
            if constexpr (high_bit) q |= ((qh[l] >> j) & 1) << 4;
            dot += q * y.qs[32 * j + l];
        }
        sumi += sc * dot;
        summ += m * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
    }
    return y.d * (fp16_to_fp32(d16) * static_cast<float>(sumi) -
                  fp16_to_fp32(dmin16) * static_cast<float>(summ));
}

void dot_q4_k(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ4_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b)
        sum += dot_q45_k_block<false>(x[b].d, x[b].dmin, x[b].scales, x[b].qs, nullptr, y[b]);
    *out = sum;
}

void dot_q5_k(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ5_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b)
        sum += dot_q45_k_block<true>(x[b].d, x[b].dmin, x[b].scales, x[b].qs, x[b].qh, y[b]);
    *out = sum;
}

void dot_q6_k(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ6_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        int sumi = 0;
        for (int g = 0; g < 16; ++g) {
            int dot = 0;
            for (int i = 0; i < 16; ++i) {
                const int v = 16 * g + i;
                const int h = v / 128;
                const int k = (v % 128) / 32;
                const int l = v % 32;
                const int low = (x[b].ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
                const int high = (x[b].qh[32 * h + l] >> (2 * k)) & 3;
                dot += ((low | (high << 4)) - 32) * y[b].qs[v];
            }
            sumi += x[b].scales[g] * dot;
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(sumi);
    }
    *out = sum;
}

void dot_iq4_xs(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4_XS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        int sumi = 0;
        for (int j = 0; j < 8; ++j) {
            const int low = (x[b].scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
            const int high = (x[b].scales_h >> (2 * j)) & 3;
            const uint8_t* qs = x[b].qs + 16 * j;
            const int8_t* q8 = y[b].qs + 32 * j;
            int dot = 0;
            for (int l = 0; l < 16; ++l) {
                dot += k_iq4_grid[qs[l] & 0x0f] * q8[l] + k_iq4_grid[qs[l] >> 4] * q8[l + 16];
            }
            sumi += ((low | (high << 4)) - 32) * dot;
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(sumi);
    }
    *out = sum;
}

// Trit i of a TQ1_0 byte (see src/quant/tq1_0.cpp), in 0..2.
int tq1_trit(uint8_t byte, int i) {
    static constexpr int k_pow3[5] = {1, 3, 9, 27, 81};
    const auto shifted = static_cast<uint8_t>(byte * k_pow3[i]);
    return (shifted * 3) >> 8;
}

void dot_tq1_0(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockTQ1_0*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const int8_t* q8 = y[b].qs;
        int dot = 0;
        for (int i = 0; i < 5; ++i) {
            for (int l = 0; l < 32; ++l) dot += (tq1_trit(x[b].qs[l], i) - 1) * q8[32 * i + l];
            for (int l = 0; l < 16; ++l)
                dot += (tq1_trit(x[b].qs[32 + l], i) - 1) * q8[160 + 16 * i + l];
        }
        for (int i = 0; i < 4; ++i) {
            for (int l = 0; l < 4; ++l) dot += (tq1_trit(x[b].qh[l], i) - 1) * q8[240 + 4 * i + l];
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot);
    }
    *out = sum;
}

void dot_tq2_0(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const BlockTQ2_0*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        int dot = 0;
        for (int v = 0; v < k_qk_k; ++v) {
            const int q = (x[b].qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
            dot += (q - 1) * y[b].qs[v];
        }
        sum += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(dot);
    }
    *out = sum;
}

// ---- float formats with F32 activations -----------------------------------------------------

void dot_f32(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += x[j] * y[j];
    *out = sum;
}

void dot_f16(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const float*>(a);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += fp16_to_fp32(x[j]) * y[j];
    *out = sum;
}

void dot_bf16(int64_t n, float* out, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const float*>(a);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += bf16_to_fp32(x[j]) * y[j];
    *out = sum;
}

// The multi-row form of a reference kernel: one row at a time.
template <VecDotFn dot>
void multi(int64_t n, const void* w, const void* a, size_t a_stride, int n_acts, float* out,
           int64_t out_stride) {
    for (int c = 0; c < n_acts; ++c)
        dot(n, out + c * out_stride, w, static_cast<const uint8_t*>(a) + c * a_stride);
}

template <VecDotFn dot>
void put(KernelTable& t, GgmlType type) {
    t.dot[type_index(type)] = dot;
    t.multi_dot[type_index(type)] = multi<dot>;
}

KernelTable make_table() {
    KernelTable t;
    put<dot_f32>(t, GgmlType::F32);
    put<dot_f16>(t, GgmlType::F16);
    put<dot_bf16>(t, GgmlType::BF16);
    put<dot_q4_0>(t, GgmlType::Q4_0);
    put<dot_q4_1>(t, GgmlType::Q4_1);
    put<dot_q5_0>(t, GgmlType::Q5_0);
    put<dot_q5_1>(t, GgmlType::Q5_1);
    put<dot_q8_0>(t, GgmlType::Q8_0);
    put<dot_iq4_nl>(t, GgmlType::IQ4_NL);
    put<dot_q2_k>(t, GgmlType::Q2_K);
    put<dot_q3_k>(t, GgmlType::Q3_K);
    put<dot_q4_k>(t, GgmlType::Q4_K);
    put<dot_q5_k>(t, GgmlType::Q5_K);
    put<dot_q6_k>(t, GgmlType::Q6_K);
    put<dot_iq4_xs>(t, GgmlType::IQ4_XS);
    put<dot_tq1_0>(t, GgmlType::TQ1_0);
    put<dot_tq2_0>(t, GgmlType::TQ2_0);
    t.quantize_q8 = quantize_q8;
    t.quantize_q8_k = quantize_q8_k;
    return t;
}

}  // namespace

const KernelTable& scalar_kernels() {
    static const KernelTable table = make_table();
    return table;
}

}  // namespace edgeq::cpu
