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
