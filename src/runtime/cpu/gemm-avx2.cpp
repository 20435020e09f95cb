// The AVX2 GEMM (see gemm.h), for CPUs without VNNI: each 8-row half of a panel against four
// activation rows at a time, u8 x s8 products by vpmaddubsw + vpmaddwd. The pairwise int16
// sums of vpmaddubsw must not saturate, so only the types whose unsigned values stay below 128
// have it (not Q8_0, IQ4_NL or IQ4_XS, whose values are offset by 128).
#define EDGEQ_GEMM_AVX512 0
#include "gemm-x86.h"

#include <algorithm>

namespace edgeq::cpu {
namespace {

constexpr int k_half = 8;  // rows per ymm of int32 lanes
constexpr int k_na = 4;    // activation rows per tile

// Rows [8h, 8h + n_rows) of the panel times activation rows c0..c0 + n_acts of the group.
template <int G, bool has_offset, bool has_min>
void run_half(const uint8_t* panel, const GemmActs& a, int64_t group, int c0, int n_acts, int h,
              float* y, int64_t y_stride, int n_rows) {
    constexpr int A = k_gemm_acts;
    const int64_t k = a.k;
    const int64_t n_sub = a.n_sub;
    const uint8_t* pq = panel + 32 * h;
    const float* ps = reinterpret_cast<const float*>(panel + k * k_gemm_rows) + k_half * h;
    const float* pm = ps + n_sub * k_gemm_rows;
    const int8_t* aq = a.qs + group * k * A + 4 * c0;
    const float* ad = a.d + group * n_sub * A + c0;
    const int32_t* ac = a.corr + group * n_sub * A + c0;
    const float* as = a.dsum + group * n_sub * A + c0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 facc[k_na];
    for (int c = 0; c < k_na; ++c) facc[c] = _mm256_setzero_ps();
    for (int64_t s = 0; s < n_sub; ++s) {
        __m256i iacc[k_na];
        for (int c = 0; c < k_na; ++c)
            iacc[c] = has_offset ? _mm256_set1_epi32(ac[c]) : _mm256_setzero_si256();
        for (int t = 0; t < G; ++t) {
            const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pq + 64 * t));
            for (int c = 0; c < k_na; ++c) {
                const __m256i p = _mm256_maddubs_epi16(w, _mm256_set1_epi32(load_i32(aq + 4 * c)));
                iacc[c] = _mm256_add_epi32(iacc[c], _mm256_madd_epi16(p, ones));
            }
            aq += 4 * A;
        }
        pq += 64 * G;
        const __m256 ws = _mm256_load_ps(ps);
        for (int c = 0; c < k_na; ++c) {
            facc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[c]),
                                      _mm256_mul_ps(ws, _mm256_set1_ps(ad[c])), facc[c]);
        }
        if constexpr (has_min) {
            const __m256 mn = _mm256_load_ps(pm);
            for (int c = 0; c < k_na; ++c)
                facc[c] = _mm256_fmadd_ps(mn, _mm256_set1_ps(as[c]), facc[c]);
            pm += k_gemm_rows;
        }
        ps += k_gemm_rows;
        ad += A;
        ac += A;
        as += A;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_rows), lane);
    for (int c = 0; c < n_acts; ++c)
        _mm256_maskstore_ps(y + (c0 + c) * y_stride + k_half * h, mask, facc[c]);
}

template <typename D>
void run_panel(const uint8_t* panel, const GemmActs& a, int64_t group, int n_acts, float* y,
               int64_t y_stride, int n_rows) {
    constexpr int G = D::sub_block / 4;
    for (int h = 0; h < 2 && k_half * h < n_rows; ++h) {
        for (int c0 = 0; c0 < n_acts; c0 += k_na) {
            run_half<G, D::offset != 0, D::has_min>(panel, a, group, c0,
                                                    std::min(k_na, n_acts - c0), h, y, y_stride,
                                                    std::min(k_half, n_rows - k_half * h));
        }
    }
}

template <typename D>
const GemmKernel* kernel_of() {
    static_assert(D::offset < 128, "vpmaddubsw pairs of values of 128 and more may saturate");
    static const GemmKernel kernel = {D::sub_block,    D::offset,       D::has_min,
                                      gemm_min_m<D>(), decode_panel<D>, run_panel<D>};
    return &kernel;
}

}  // namespace

void add_avx2_gemm(KernelTable& t) {
    t.gemm[type_index(GgmlType::Q4_0)] = kernel_of<DQ4_0>();
    t.gemm[type_index(GgmlType::Q4_1)] = kernel_of<DQ4_1>();
    t.gemm[type_index(GgmlType::Q5_0)] = kernel_of<DQ5_0>();
    t.gemm[type_index(GgmlType::Q5_1)] = kernel_of<DQ5_1>();
    t.gemm[type_index(GgmlType::Q2_K)] = kernel_of<DQ2_K>();
    t.gemm[type_index(GgmlType::Q3_K)] = kernel_of<DQ3_K>();
    t.gemm[type_index(GgmlType::Q4_K)] = kernel_of<DQx_K<false>>();
    t.gemm[type_index(GgmlType::Q5_K)] = kernel_of<DQx_K<true>>();
    t.gemm[type_index(GgmlType::Q6_K)] = kernel_of<DQ6_K>();
    t.gemm[type_index(GgmlType::TQ2_0)] = kernel_of<DTQ2_0>();
}

}  // namespace edgeq::cpu
