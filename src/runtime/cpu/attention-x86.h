// The attention tile kernel, written once over the vectors of ops-x86.h and compiled twice:
// attention-avx2.cpp (8 floats a vector) and attention-avx512.cpp (16). Include only from
// those two files, after defining EDGEQ_SIMD_WIDTH.
//
// Scores: R rows at a time against the whole tile, the transposed keys making each position
// a vector lane, so a row's scores are k_cols vectors of FMAs over d with no horizontal sums.
// Softmax: per row, a vector of lanes at a time, with vexp. Values: R rows x 2 vectors of the
// output at a time, accumulated over the tile's positions in registers. Each row is computed
// by the same operations whatever R and its neighbours are, so results do not depend on how
// rows are blocked.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention-kernels.h"
#include "ops-x86.h"

namespace edgeq::cpu {
namespace {

constexpr int k_cols = k_attention_tile / k_w;  // vectors per row of scores
constexpr int k_qk_rows = k_w == 16 ? 8 : 2;    // rows per score block: 16 or 8 accumulators
constexpr int k_pv_rows = k_w == 16 ? 8 : 4;    // rows per value block: 16 or 8 accumulators

template <int R>
inline void scores_block(const TileJob& job, int r0) {
    vf acc[R][k_cols];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < k_cols; ++c) acc[r][c] = vzero();
    const float* q[R];
    for (int r = 0; r < R; ++r) q[r] = job.q[r0 + r];
    for (int d = 0; d < job.dk; ++d) {
        vf kd[k_cols];
        for (int c = 0; c < k_cols; ++c) kd[c] = vload(job.kt + d * k_attention_tile + c * k_w);
        for (int r = 0; r < R; ++r) {
            const vf qd = vset(q[r][d]);
            for (int c = 0; c < k_cols; ++c) acc[r][c] = vfma(qd, kd[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < k_cols; ++c)
            vstore(job.scores + (r0 + r) * k_attention_tile + c * k_w, acc[r][c]);
}

// Scores to probabilities under the row's new running maximum; updates max, sum and corr.
inline void softmax_row(const TileJob& job, int r) {
    float* s = job.scores + r * k_attention_tile;
    const int lo = job.lo[r], hi = job.hi[r];
    if (lo >= hi) {  // nothing here: weight 0, state kept
        for (int c = 0; c < k_cols; ++c) vstore(s + c * k_w, vzero());
        job.corr[r] = 1.0f;
        return;
    }
    const vf neg_inf = vset(-std::numeric_limits<float>::infinity());
    const vf scale = vset(job.scale);
    vf x[k_cols];
    vf mx = neg_inf;
    for (int c = 0; c < k_cols; ++c) {
        x[c] = vmul(vload(s + c * k_w), scale);
        if (job.softcap > 0) {
            const vf cap = vset(job.softcap), inv = vset(1.0f / job.softcap);
            x[c] = vmul(cap, vtanh(vmul(x[c], inv)));
        }
        if (lo > 0 || hi < k_attention_tile)
            x[c] = vkeep_range(x[c], lo - c * k_w, hi - c * k_w, neg_inf);
        mx = vmax(mx, x[c]);
    }
    const float m_old = job.max[r];
    const float m_new = std::max(m_old, vmaxval(mx));
    const float corr = std::exp(m_old - m_new);  // 0 on the first tile
    const vf m = vset(m_new);
    vf total = vzero();
    for (int c = 0; c < k_cols; ++c) {
        const vf p = vexp(vsub(x[c], m));
        total = vadd(total, p);
        vstore(s + c * k_w, p);
    }
    job.max[r] = m_new;
    job.sum[r] = job.sum[r] * corr + vsum(total);
    job.corr[r] = corr;
}

template <int R>
inline void values_block(const TileJob& job, int r0) {
    const int dv = job.dv_pad;  // a multiple of 32
    for (int d0 = 0; d0 < dv; d0 += 2 * k_w) {
        vf acc[R][2];
        for (int r = 0; r < R; ++r) {
            const vf c = vset(job.corr[r0 + r]);
            float* a = job.acc + (r0 + r) * dv + d0;
            acc[r][0] = vmul(vload(a), c);
            acc[r][1] = vmul(vload(a + k_w), c);
        }
        for (int j = 0; j < job.n_cols; ++j) {
            const float* vj = job.vt + j * dv + d0;
            const vf v0 = vload(vj), v1 = vload(vj + k_w);
            for (int r = 0; r < R; ++r) {
                const vf p = vset(job.scores[(r0 + r) * k_attention_tile + j]);
                acc[r][0] = vfma(p, v0, acc[r][0]);
                acc[r][1] = vfma(p, v1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; ++r) {
            float* a = job.acc + (r0 + r) * dv + d0;
            vstore(a, acc[r][0]);
            vstore(a + k_w, acc[r][1]);
        }
    }
}

// The tile from an F16 cache: keys eight positions by eight dimensions at a time, converted
// (exactly) and transposed in registers; a position past n_cols reads as zeros.
[[maybe_unused]] void load_tile_f16(const TileLoad& t) {
    const auto row = [&](const uint8_t* base, size_t stride, int32_t j) {
        return reinterpret_cast<const uint16_t*>(base + static_cast<size_t>(t.t0 + j) * stride);
    };
    const int32_t d8 = t.dk / 8 * 8;
    for (int32_t j0 = 0; j0 < k_attention_tile; j0 += 8) {
        const int32_t n = std::min(8, t.n_cols - j0);
        if (n <= 0) {
            for (int32_t d = 0; d < t.dk; ++d)
                _mm256_storeu_ps(t.kt + d * k_attention_tile + j0, _mm256_setzero_ps());
            continue;
        }
        const uint16_t* k[8];
        for (int32_t i = 0; i < 8; ++i)
            k[i] = i < n ? row(t.k_rows, t.k_pos_stride, j0 + i) : nullptr;
        for (int32_t d0 = 0; d0 < d8; d0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; ++i)
                r[i] = k[i] != nullptr ? _mm256_cvtph_ps(_mm_loadu_si128(
                                             reinterpret_cast<const __m128i*>(k[i] + d0)))
                                       : _mm256_setzero_ps();
            // 8 x 8 transpose: pairs, then quads, then halves.
            __m256 a[8], b[8];
            for (int i = 0; i < 8; i += 2) {
                a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                for (int h = 0; h < 2; ++h) {
                    b[i + h] = _mm256_shuffle_ps(a[i + h], a[i + 2 + h], 0x44);
                    b[i + 2 + h] = _mm256_shuffle_ps(a[i + h], a[i + 2 + h], 0xee);
                }
            }
            // b[0..3]: dims d0 + {0, 2, 1, 3} (and + 4 in the high halves) of rows 0..3; b[4..7]
            // the same of rows 4..7.
            constexpr int dim_of[4] = {0, 2, 1, 3};
            for (int q = 0; q < 4; ++q) {
                const int d = dim_of[q];
                float* lo = t.kt + (d0 + d) * k_attention_tile + j0;
                float* hi = t.kt + (d0 + d + 4) * k_attention_tile + j0;
                _mm256_storeu_ps(lo, _mm256_permute2f128_ps(b[q], b[q + 4], 0x20));
                _mm256_storeu_ps(hi, _mm256_permute2f128_ps(b[q], b[q + 4], 0x31));
            }
        }
        for (int32_t d = d8; d < t.dk; ++d)
            for (int32_t i = 0; i < 8; ++i)
                t.kt[d * k_attention_tile + j0 + i] = k[i] != nullptr ? _cvtsh_ss(k[i][d]) : 0.0f;
    }
    const int32_t dv8 = t.dv / 8 * 8;
    for (int32_t j = 0; j < t.n_cols; ++j) {
        const uint16_t* v = row(t.v_rows, t.v_pos_stride, j);
        float* out = t.vt + static_cast<size_t>(j) * static_cast<size_t>(t.dv_pad);
        for (int32_t d = 0; d < dv8; d += 8)
            _mm256_storeu_ps(
                out + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + d))));
        for (int32_t d = dv8; d < t.dv; ++d) out[d] = _cvtsh_ss(v[d]);
    }
}

void tile_simd(const TileJob& job) {
    int r = 0;
    for (; r + k_qk_rows <= job.n_rows; r += k_qk_rows) scores_block<k_qk_rows>(job, r);
    for (; r < job.n_rows; ++r) scores_block<1>(job, r);
    for (r = 0; r < job.n_rows; ++r) softmax_row(job, r);
    r = 0;
    for (; r + k_pv_rows <= job.n_rows; r += k_pv_rows) values_block<k_pv_rows>(job, r);
    for (; r < job.n_rows; ++r) values_block<1>(job, r);
}

}  // namespace
}  // namespace edgeq::cpu
