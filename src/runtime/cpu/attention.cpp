#include "edgeq/runtime/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "edgeq/quant/dtype.h"

namespace edgeq::cpu {

AttentionScratch::AttentionScratch(int32_t max_group, int32_t head_dim_k, int32_t head_dim_v)
    : k_tile(static_cast<size_t>(k_attention_tile) * static_cast<size_t>(head_dim_k)),
      v_tile(static_cast<size_t>(k_attention_tile) * static_cast<size_t>(head_dim_v)),
      scores(static_cast<size_t>(max_group) * k_attention_tile),
      acc(static_cast<size_t>(max_group) * static_cast<size_t>(head_dim_v)),
      max(static_cast<size_t>(max_group)),
      sum(static_cast<size_t>(max_group)) {}

namespace {

void load_rows(const KvRows& rows, int32_t head, int32_t first, int32_t count, float* dst) {
    const ToFloatFn to_float = dtype(rows.type).to_float;
    const uint8_t* src = rows.data + static_cast<size_t>(head) * rows.head_stride;
    for (int32_t j = 0; j < count; ++j) {
        to_float(src + static_cast<size_t>(first + j) * rows.pos_stride,
                 dst + static_cast<size_t>(j) * static_cast<size_t>(rows.head_dim), rows.head_dim);
    }
}

}  // namespace

void attend(const float* q, int32_t n_group, const KvRows& k, const KvRows& v, int32_t kv_head,
            int32_t begin, int32_t end, float scale, float softcap, float* out,
            AttentionScratch& scratch) {
    const int32_t dk = k.head_dim, dv = v.head_dim;
    float* acc = scratch.acc.data();
    std::fill(acc, acc + static_cast<size_t>(n_group) * static_cast<size_t>(dv), 0.0f);
    std::fill(scratch.max.begin(), scratch.max.begin() + n_group,
              -std::numeric_limits<float>::infinity());
    std::fill(scratch.sum.begin(), scratch.sum.begin() + n_group, 0.0f);

    for (int32_t t0 = begin; t0 < end; t0 += k_attention_tile) {
        const int32_t n = std::min(k_attention_tile, end - t0);
        load_rows(k, kv_head, t0, n, scratch.k_tile.data());
        load_rows(v, kv_head, t0, n, scratch.v_tile.data());
        for (int32_t g = 0; g < n_group; ++g) {
            const float* qg = q + static_cast<size_t>(g) * static_cast<size_t>(dk);
            float* s = scratch.scores.data() + static_cast<size_t>(g) * k_attention_tile;
            float tile_max = -std::numeric_limits<float>::infinity();
            for (int32_t j = 0; j < n; ++j) {
                const float* kj = scratch.k_tile.data() + static_cast<size_t>(j) * dk;
                float dot = 0;
                for (int32_t d = 0; d < dk; ++d) dot += qg[d] * kj[d];
                float x = dot * scale;
                if (softcap > 0) x = softcap * std::tanh(x / softcap);
                s[j] = x;
                tile_max = std::max(tile_max, x);
            }
            // Rescale what was accumulated under the old maximum.
            float& m = scratch.max[static_cast<size_t>(g)];
            float& l = scratch.sum[static_cast<size_t>(g)];
            float* ag = acc + static_cast<size_t>(g) * static_cast<size_t>(dv);
            const float new_max = std::max(m, tile_max);
            const float correction = std::exp(m - new_max);  // 0 on the first tile
            if (correction != 1.0f) {
                l *= correction;
                for (int32_t d = 0; d < dv; ++d) ag[d] *= correction;
            }
            m = new_max;
            for (int32_t j = 0; j < n; ++j) {
                const float p = std::exp(s[j] - new_max);
                l += p;
                const float* vj = scratch.v_tile.data() + static_cast<size_t>(j) * dv;
                for (int32_t d = 0; d < dv; ++d) ag[d] += p * vj[d];
            }
        }
    }
    for (int32_t g = 0; g < n_group; ++g) {
        const float inv = 1.0f / scratch.sum[static_cast<size_t>(g)];
        const float* ag = acc + static_cast<size_t>(g) * static_cast<size_t>(dv);
        float* og = out + static_cast<size_t>(g) * static_cast<size_t>(dv);
        for (int32_t d = 0; d < dv; ++d) og[d] = ag[d] * inv;
    }
}

}  // namespace edgeq::cpu
