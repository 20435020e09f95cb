// The AVX-512 VNNI GEMM (see gemm.h): panels of 16 weight rows, one zmm of int32 lanes per
// activation row, vpdpbusd with the activation's four bytes broadcast from memory.

// GCC 12 flags the _mm512_undefined_ps() inside _mm512_cvtepi32_ps as maybe uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define EDGEQ_GEMM_AVX512 1
#include "gemm-x86.h"

#include <algorithm>

namespace edgeq::cpu {
namespace {

static_assert(k_gemm_rows == 16);

// ---- the tile: 16 weight rows times NA activation rows ------------------------------------

template <int G, bool has_offset, bool has_min, int NA>
void run_tile(const uint8_t* panel, const GemmActs& a, int64_t group, int n_acts, float* y,
              int64_t y_stride, int n_rows) {
    constexpr int A = k_gemm_acts;
    const int64_t k = a.k;
    const int64_t n_sub = a.n_sub;
    const uint8_t* pq = panel;
    const auto* ps = reinterpret_cast<const float*>(panel + k * k_gemm_rows);
    const float* pm = ps + n_sub * k_gemm_rows;
    const int8_t* aq = a.qs + group * k * A;
    const float* ad = a.d + group * n_sub * A;
    const int32_t* ac = a.corr + group * n_sub * A;
    const float* as = a.dsum + group * n_sub * A;
    __m512 facc[NA];
    for (int c = 0; c < NA; ++c) facc[c] = _mm512_setzero_ps();
    for (int64_t s = 0; s < n_sub; ++s) {
        __m512i iacc[NA];
        for (int c = 0; c < NA; ++c)
            iacc[c] = has_offset ? _mm512_set1_epi32(ac[c]) : _mm512_setzero_si512();
        for (int t = 0; t < G; ++t) {
            const __m512i w = _mm512_load_si512(pq + 64 * t);
            for (int c = 0; c < NA; ++c)
                iacc[c] = _mm512_dpbusd_epi32(iacc[c], w, _mm512_set1_epi32(load_i32(aq + 4 * c)));
            aq += 4 * A;
        }
        pq += 64 * G;
        const __m512 ws = _mm512_load_ps(ps);
        for (int c = 0; c < NA; ++c) {
            facc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[c]),
                                      _mm512_mul_ps(ws, _mm512_set1_ps(ad[c])), facc[c]);
        }
        if constexpr (has_min) {
            const __m512 mn = _mm512_load_ps(pm);
            for (int c = 0; c < NA; ++c)
                facc[c] = _mm512_fmadd_ps(mn, _mm512_set1_ps(as[c]), facc[c]);
            pm += k_gemm_rows;
        }
        ps += k_gemm_rows;
        ad += A;
        ac += A;
        as += A;
    }
    const auto mask = static_cast<__mmask16>((1u << n_rows) - 1);
    for (int c = 0; c < NA; ++c) {
        if (c < n_acts) _mm512_mask_storeu_ps(y + c * y_stride, mask, facc[c]);
    }
}

// The k-quants' tile: their activations have one scale per 256 values, so the sub-blocks of a
// super-block sum in float without it (sb), and the scale multiplies once per super-block:
// one multiply fewer per sub-block, at the cost of NA more registers.
template <int G, bool has_offset, bool has_min, int SB, int NA>
void run_tile_k(const uint8_t* panel, const GemmActs& a, int64_t group, int n_acts, float* y,
                int64_t y_stride, int n_rows) {
    constexpr int A = k_gemm_acts;
    const int64_t k = a.k;
    const int64_t n_sub = a.n_sub;
    const uint8_t* pq = panel;
    const auto* ps = reinterpret_cast<const float*>(panel + k * k_gemm_rows);
    const float* pm = ps + n_sub * k_gemm_rows;
    const int8_t* aq = a.qs + group * k * A;
    const float* ad = a.d + group * n_sub * A;
    const int32_t* ac = a.corr + group * n_sub * A;
    const float* as = a.dsum + group * n_sub * A;
    __m512 facc[NA];
    for (int c = 0; c < NA; ++c) facc[c] = _mm512_setzero_ps();
    for (int64_t s0 = 0; s0 < n_sub; s0 += SB) {
        __m512 sb[NA];
        for (int c = 0; c < NA; ++c) sb[c] = _mm512_setzero_ps();
        for (int j = 0; j < SB; ++j) {
            __m512i iacc[NA];
            for (int c = 0; c < NA; ++c)
                iacc[c] = has_offset ? _mm512_set1_epi32(ac[c]) : _mm512_setzero_si512();
            for (int t = 0; t < G; ++t) {
                const __m512i w = _mm512_load_si512(pq + 64 * t);
                for (int c = 0; c < NA; ++c) {
                    iacc[c] =
                        _mm512_dpbusd_epi32(iacc[c], w, _mm512_set1_epi32(load_i32(aq + 4 * c)));
                }
                aq += 4 * A;
            }
            pq += 64 * G;
            const __m512 ws = _mm512_load_ps(ps);
            for (int c = 0; c < NA; ++c)
                sb[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[c]), ws, sb[c]);
            if constexpr (has_min) {
                const __m512 mn = _mm512_load_ps(pm);
                for (int c = 0; c < NA; ++c)
                    facc[c] = _mm512_fmadd_ps(mn, _mm512_set1_ps(as[c]), facc[c]);
                pm += k_gemm_rows;
            }
            ps += k_gemm_rows;
            ac += A;
            as += A;
        }
        for (int c = 0; c < NA; ++c)
            facc[c] = _mm512_fmadd_ps(sb[c], _mm512_set1_ps(ad[c]), facc[c]);
        ad += SB * A;
    }
    const auto mask = static_cast<__mmask16>((1u << n_rows) - 1);
    for (int c = 0; c < NA; ++c) {
        if (c < n_acts) _mm512_mask_storeu_ps(y + c * y_stride, mask, facc[c]);
    }
}

template <typename D>
void run_panel(const uint8_t* panel, const GemmActs& a, int64_t group, int n_acts, float* y,
               int64_t y_stride, int n_rows) {
    constexpr int G = D::sub_block / 4;
    constexpr bool off = D::offset != 0;
    if constexpr (D::block_size == 256) {
        constexpr int SB = 256 / D::sub_block;
        static_assert(k_gemm_acts == 12);
        // A group of 12 rows as 8 + 4 (three sets of NA accumulators do not fit 12 wide).
        if (n_acts <= 4) {
            run_tile_k<G, off, D::has_min, SB, 4>(panel, a, group, n_acts, y, y_stride, n_rows);
            return;
        }
        run_tile_k<G, off, D::has_min, SB, 8>(panel, a, group, std::min(n_acts, 8), y, y_stride,
                                              n_rows);
        if (n_acts > 8) {
            GemmActs rest = a;
            rest.qs += 4 * 8;
            rest.d += 8;
            rest.corr += 8;
            rest.dsum += 8;
            run_tile_k<G, off, D::has_min, SB, 4>(panel, rest, group, n_acts - 8, y + 8 * y_stride,
                                                  y_stride, n_rows);
        }
        return;
    }
    if (n_acts <= 4) {
        run_tile<G, off, D::has_min, 4>(panel, a, group, n_acts, y, y_stride, n_rows);
    } else if (n_acts <= 8) {
        run_tile<G, off, D::has_min, 8>(panel, a, group, n_acts, y, y_stride, n_rows);
    } else {
        run_tile<G, off, D::has_min, k_gemm_acts>(panel, a, group, n_acts, y, y_stride, n_rows);
    }
}

template <typename D>
const GemmKernel* kernel_of() {
    static const GemmKernel kernel = {D::sub_block,    D::offset,       D::has_min,
                                      gemm_min_m<D>(), decode_panel<D>, run_panel<D>};
    return &kernel;
}

}  // namespace

void add_avx512_gemm(KernelTable& t) {
    t.gemm[type_index(GgmlType::Q4_0)] = kernel_of<DQ4_0>();
    t.gemm[type_index(GgmlType::Q4_1)] = kernel_of<DQ4_1>();
    t.gemm[type_index(GgmlType::Q5_0)] = kernel_of<DQ5_0>();
    t.gemm[type_index(GgmlType::Q5_1)] = kernel_of<DQ5_1>();
    t.gemm[type_index(GgmlType::Q8_0)] = kernel_of<DQ8_0>();
    t.gemm[type_index(GgmlType::IQ4_NL)] = kernel_of<DIQ4_NL>();
    t.gemm[type_index(GgmlType::Q2_K)] = kernel_of<DQ2_K>();
    t.gemm[type_index(GgmlType::Q3_K)] = kernel_of<DQ3_K>();
    t.gemm[type_index(GgmlType::Q4_K)] = kernel_of<DQx_K<false>>();
    t.gemm[type_index(GgmlType::Q5_K)] = kernel_of<DQx_K<true>>();
    t.gemm[type_index(GgmlType::Q6_K)] = kernel_of<DQ6_K>();
    t.gemm[type_index(GgmlType::IQ4_XS)] = kernel_of<DIQ4_XS>();
    t.gemm[type_index(GgmlType::TQ2_0)] = kernel_of<DTQ2_0>();
}

}  // namespace edgeq::cpu
