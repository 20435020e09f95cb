// Float vectors for the x86 row operations and attention, written once and compiled twice:
// ops-avx2.cpp / attention-avx2.cpp (EDGEQ_SIMD_WIDTH 8: AVX2 + FMA) and ops-avx512.cpp /
// attention-avx512.cpp (EDGEQ_SIMD_WIDTH 16: AVX-512F). Everything here has internal linkage,
// so the builds do not collide.
//
// vexp is a polynomial exp: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts, so n ln2
// is exact), e^r by its Taylor series to degree 7 (truncation below 0.05 ulp), times 2^n made
// from two exponent fields (so n from -150 to 128 needs no special case: subnormal results are
// rounded once by the last multiply). Measured within 2 ulp of exp over the float range; -inf
// and x < -104 give 0, x > 88.73 gives inf, NaN stays NaN.
#pragma once

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its flow analysis reports
// as uninitialized once inlined; the warning points into the intrinsics headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "ops-kernels.h"

#ifndef EDGEQ_SIMD_WIDTH
#error "define EDGEQ_SIMD_WIDTH (8 or 16) before including ops-x86.h"
#endif

namespace edgeq::cpu {
namespace {

#if EDGEQ_SIMD_WIDTH == 16

using vf = __m512;
constexpr int k_w = 16;

inline vf vzero() {
    return _mm512_setzero_ps();
}
inline vf vset(float x) {
    return _mm512_set1_ps(x);
}
inline vf vload(const float* p) {
    return _mm512_loadu_ps(p);
}
inline void vstore(float* p, vf v) {
    _mm512_storeu_ps(p, v);
}
// The first n (< k_w) lanes; the others read as 0 and are not written.
inline vf vload_n(const float* p, int n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
}
inline void vstore_n(float* p, vf v, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
}
inline vf vadd(vf a, vf b) {
    return _mm512_add_ps(a, b);
}
inline vf vsub(vf a, vf b) {
    return _mm512_sub_ps(a, b);
}
inline vf vmul(vf a, vf b) {
    return _mm512_mul_ps(a, b);
}
inline vf vdiv(vf a, vf b) {
    return _mm512_div_ps(a, b);
}
inline vf vfma(vf a, vf b, vf c) {
    return _mm512_fmadd_ps(a, b, c);
}
// max(a, b) and min(a, b) return b when either is NaN.
inline vf vmax(vf a, vf b) {
    return _mm512_max_ps(a, b);
}
inline vf vmin(vf a, vf b) {
    return _mm512_min_ps(a, b);
}
inline vf vabs(vf a) {
    return _mm512_abs_ps(a);
}
// a with the sign of s.
inline vf vcopysign(vf a, vf s) {
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castps_si512(a)),
                                               _mm512_and_si512(sign, _mm512_castps_si512(s))));
}
inline float vsum(vf v) {
    return _mm512_reduce_add_ps(v);
}
inline float vmaxval(vf v) {
    return _mm512_reduce_max_ps(v);
}
// Lanes of a, with those where c < lim (c > lim) replaced by b's.
inline vf vwhere_below(vf c, float lim, vf a, vf b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(c, vset(lim), _CMP_LT_OQ), a, b);
}
inline vf vwhere_above(vf c, float lim, vf a, vf b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(c, vset(lim), _CMP_GT_OQ), a, b);
}
// Lanes i of x with lo <= i < hi kept, the others set to y.
inline vf vkeep_range(vf x, int lo, int hi, vf y) {
    const uint32_t below_hi = hi >= 16 ? 0xffffu : hi <= 0 ? 0u : (1u << hi) - 1;
    const uint32_t below_lo = lo >= 16 ? 0xffffu : lo <= 0 ? 0u : (1u << lo) - 1;
    return _mm512_mask_blend_ps(static_cast<__mmask16>(below_hi & ~below_lo), y, x);
}
inline vf vround(vf x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
// 2^n for integral n in [-150, 128], as two normal powers of two multiplied into p.
inline vf vscale_pow2(vf p, vf n) {
    const __m512i ni = _mm512_cvtps_epi32(n);
    const __m512i a = _mm512_srai_epi32(ni, 1);
    const __m512i b = _mm512_sub_epi32(ni, a);
    const __m512i bias = _mm512_set1_epi32(127);
    const vf pa = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(a, bias), 23));
    const vf pb = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(b, bias), 23));
    return vmul(vmul(p, pa), pb);
}

#elif EDGEQ_SIMD_WIDTH == 8

using vf = __m256;
constexpr int k_w = 8;

inline vf vzero() {
    return _mm256_setzero_ps();
}
inline vf vset(float x) {
    return _mm256_set1_ps(x);
}
inline vf vload(const float* p) {
    return _mm256_loadu_ps(p);
}
inline void vstore(float* p, vf v) {
    _mm256_storeu_ps(p, v);
}
inline __m256i vlane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline vf vload_n(const float* p, int n) {
    return _mm256_maskload_ps(p, vlane_mask(n));
}
inline void vstore_n(float* p, vf v, int n) {
    _mm256_maskstore_ps(p, vlane_mask(n), v);
}
inline vf vadd(vf a, vf b) {
    return _mm256_add_ps(a, b);
}
inline vf vsub(vf a, vf b) {
    return _mm256_sub_ps(a, b);
}
inline vf vmul(vf a, vf b) {
    return _mm256_mul_ps(a, b);
}
inline vf vdiv(vf a, vf b) {
    return _mm256_div_ps(a, b);
}
inline vf vfma(vf a, vf b, vf c) {
    return _mm256_fmadd_ps(a, b, c);
}
inline vf vmax(vf a, vf b) {
    return _mm256_max_ps(a, b);
}
inline vf vmin(vf a, vf b) {
    return _mm256_min_ps(a, b);
}
inline vf vabs(vf a) {
    return _mm256_andnot_ps(vset(-0.0f), a);
}
inline vf vcopysign(vf a, vf s) {
    const vf sign = vset(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, a), _mm256_and_ps(sign, s));
}
inline float vsum(vf v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
inline float vmaxval(vf v) {
    const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)));
}
inline vf vwhere_below(vf c, float lim, vf a, vf b) {
    return _mm256_blendv_ps(a, b, _mm256_cmp_ps(c, vset(lim), _CMP_LT_OQ));
}
inline vf vwhere_above(vf c, float lim, vf a, vf b) {
    return _mm256_blendv_ps(a, b, _mm256_cmp_ps(c, vset(lim), _CMP_GT_OQ));
}
inline vf vkeep_range(vf x, int lo, int hi, vf y) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i in = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), idx),
                                           _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
    return _mm256_blendv_ps(y, x, _mm256_castsi256_ps(in));
}
inline vf vround(vf x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
inline vf vscale_pow2(vf p, vf n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i a = _mm256_srai_epi32(ni, 1);
    const __m256i b = _mm256_sub_epi32(ni, a);
    const __m256i bias = _mm256_set1_epi32(127);
    const vf pa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
    const vf pb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
    return vmul(vmul(p, pa), pb);
}

#else
#error "EDGEQ_SIMD_WIDTH must be 8 or 16"
#endif

// ---- functions -------------------------------------------------------------------------------

inline vf vexp(vf x) {
    constexpr float k_lo = -104.0f;  // below: 0 (e^-104 is under half the least subnormal)
    constexpr float k_hi = 88.73f;   // above: inf (e^88.73 > FLT_MAX)
    const vf xc = vmin(vset(k_hi), vmax(vset(k_lo), x));  // NaN passes through both
    const vf n = vround(vmul(xc, vset(1.44269504088896341f)));
    vf r = vfma(n, vset(-0.693145751953125f), xc);  // ln2's leading bits: n * them is exact
    r = vfma(n, vset(-1.42860682030941723212e-6f), r);
    vf p = vset(1.0f / 5040);
    p = vfma(p, r, vset(1.0f / 720));
    p = vfma(p, r, vset(1.0f / 120));
    p = vfma(p, r, vset(1.0f / 24));
    p = vfma(p, r, vset(1.0f / 6));
    p = vfma(p, r, vset(0.5f));
    p = vfma(p, r, vset(1.0f));
    p = vfma(p, r, vset(1.0f));
    const vf y = vscale_pow2(p, n);
    return vwhere_above(x, k_hi, vwhere_below(x, k_lo, y, vzero()), vset(__builtin_inff()));
}

// tanh(x) = sign(x) (1 - t) / (1 + t) with t = e^(-2|x|): within about 1e-7 absolutely (near
// 0 the relative error grows, as 1 - t cancels), within a few ulp where |tanh| > 0.5.
inline vf vtanh(vf x) {
    const vf t = vexp(vmul(vabs(x), vset(-2.0f)));
    const vf one = vset(1.0f);
    return vcopysign(vdiv(vsub(one, t), vadd(one, t)), x);
}

// x sigmoid(a x) = x / (1 + e^(-a x)): no cancellation, a few ulp everywhere.
inline vf vx_sigmoid(vf x, vf ax) {
    return vdiv(x, vadd(vset(1.0f), vexp(vsub(vzero(), ax))));
}

inline vf vsilu(vf x) {
    return vx_sigmoid(x, x);
}

// 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
inline vf vgelu_tanh(vf x) {
    const vf x2 = vmul(x, x);
    const vf two_u =
        vmul(vmul(x, vset(2.0f * 0.7978845608028654f)), vfma(x2, vset(0.044715f), vset(1.0f)));
    return vx_sigmoid(x, two_u);
}

// ---- row operations (see edgeq/runtime/cpu/ops.h) --------------------------------------------

// Applies f to n floats of x into y, a vector at a time, the tail with masked moves.
template <typename F>
inline void map_row(const float* x, float* y, int64_t n, F f) {
    int64_t i = 0;
    for (; i + k_w <= n; i += k_w) vstore(y + i, f(vload(x + i)));
    if (i < n) vstore_n(y + i, f(vload_n(x + i, static_cast<int>(n - i))), static_cast<int>(n - i));
}

inline void exp_row_simd(const float* x, float* y, int64_t n) {
    map_row(x, y, n, [](vf v) { return vexp(v); });
}

inline void rms_norm_simd(const float* x, const float* w, float* y, int64_t n, float eps) {
    vf s0 = vzero(), s1 = vzero();
    int64_t i = 0;
    for (; i + 2 * k_w <= n; i += 2 * k_w) {
        const vf a = vload(x + i), b = vload(x + i + k_w);
        s0 = vfma(a, a, s0);
        s1 = vfma(b, b, s1);
    }
    for (; i < n; i += k_w) {
        const vf a = vload_n(x + i, static_cast<int>(n - i < k_w ? n - i : k_w));
        s0 = vfma(a, a, s0);
    }
    const double sum = vsum(vadd(s0, s1));
    const vf r = vset(static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps)));
    if (w == nullptr) {
        map_row(x, y, n, [r](vf v) { return vmul(v, r); });
        return;
    }
    i = 0;
    for (; i + k_w <= n; i += k_w) vstore(y + i, vmul(vmul(vload(x + i), r), vload(w + i)));
    if (i < n) {
        const int m = static_cast<int>(n - i);
        vstore_n(y + i, vmul(vmul(vload_n(x + i, m), r), vload_n(w + i, m)), m);
    }
}

template <typename F>
inline void gate_row(const float* gate, const float* up, float* out, int64_t n, F act) {
    int64_t i = 0;
    for (; i + k_w <= n; i += k_w) vstore(out + i, vmul(act(vload(gate + i)), vload(up + i)));
    if (i < n) {
        const int m = static_cast<int>(n - i);
        vstore_n(out + i, vmul(act(vload_n(gate + i, m)), vload_n(up + i, m)), m);
    }
}

inline void gated_activation_simd(Activation act, const float* gate, const float* up, float* out,
                                  int64_t n) {
    if (act == Activation::silu) {
        gate_row(gate, up, out, n, [](vf v) { return vsilu(v); });
    } else {
        gate_row(gate, up, out, n, [](vf v) { return vgelu_tanh(v); });
    }
}

inline void soft_cap_simd(float* x, int64_t n, float cap) {
    const vf c = vset(cap), inv = vset(1.0f / cap);
    map_row(x, x, n, [c, inv](vf v) { return vmul(c, vtanh(vmul(v, inv))); });
}

inline OpsKernels make_simd_ops() {
    OpsKernels k;
    k.exp_row = exp_row_simd;
    k.rms_norm = rms_norm_simd;
    k.gated_activation = gated_activation_simd;
    k.soft_cap = soft_cap_simd;
    return k;
}

}  // namespace
}  // namespace edgeq::cpu
