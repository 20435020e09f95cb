#include "edgeq/runtime/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention-kernels.h"
#include "edgeq/core/error.h"
#include "edgeq/quant/dtype.h"

namespace edgeq::cpu {

namespace {

constexpr float k_neg_inf = -std::numeric_limits<float>::infinity();
constexpr size_t k_tile_size = k_attention_tile;

size_t as_size(int64_t n) {
    return static_cast<size_t>(n);
}

// The reference: each row's scores in position order, libm exp and tanh.
void tile_scalar(const TileJob& job) {
    for (int32_t r = 0; r < job.n_rows; ++r) {
        const int32_t lo = job.lo[r], hi = job.hi[r];
        if (lo >= hi) continue;
        const float* q = job.q[r];
        float* s = job.scores + as_size(r) * k_tile_size;
        float tile_max = k_neg_inf;
        for (int32_t j = lo; j < hi; ++j) {
            float dot = 0;
            for (int32_t d = 0; d < job.dk; ++d)
                dot += q[d] * job.kt[as_size(d) * k_tile_size + as_size(j)];
            float x = dot * job.scale;
            if (job.softcap > 0) x = job.softcap * std::tanh(x / job.softcap);
            s[j] = x;
            tile_max = std::max(tile_max, x);
        }
        // Rescale what was accumulated under the old maximum.
        float& m = job.max[r];
        float& l = job.sum[r];
        float* acc = job.acc + as_size(r) * as_size(job.dv_pad);
        const float new_max = std::max(m, tile_max);
        const float correction = std::exp(m - new_max);  // 0 on the first tile
        if (correction != 1.0f) {
            l *= correction;
            for (int32_t d = 0; d < job.dv_pad; ++d) acc[d] *= correction;
        }
        m = new_max;
        for (int32_t j = lo; j < hi; ++j) {
            const float p = std::exp(s[j] - new_max);
            l += p;
            const float* vj = job.vt + as_size(j) * as_size(job.dv_pad);
            for (int32_t d = 0; d < job.dv_pad; ++d) acc[d] += p * vj[d];
        }
    }
}

// The tile's keys and values from any cache type, a row at a time.
void load_tile_rows(const TileLoad& t, ToFloatFn k_to_float, ToFloatFn v_to_float, float* row) {
    for (int32_t j = 0; j < t.n_cols; ++j) {
        k_to_float(t.k_rows + as_size(t.t0 + j) * t.k_pos_stride, row, t.dk);
        for (int32_t d = 0; d < t.dk; ++d) t.kt[as_size(d) * k_tile_size + as_size(j)] = row[d];
        v_to_float(t.v_rows + as_size(t.t0 + j) * t.v_pos_stride,
                   t.vt + as_size(j) * as_size(t.dv_pad), t.dv);
    }
    for (int32_t j = t.n_cols; j < k_attention_tile; ++j)
        for (int32_t d = 0; d < t.dk; ++d) t.kt[as_size(d) * k_tile_size + as_size(j)] = 0.0f;
}

TileFn tile_for(Isa isa) {
    TileFn f = nullptr;
    if (isa == Isa::avx512) f = attention_tile_avx512();
    if (isa == Isa::avx2) f = attention_tile_avx2();
    return f != nullptr ? f : tile_scalar;
}

// Runs the online softmax of the block's rows over their positions within [kv_begin, kv_end),
// leaving each row's state in scratch.max, .sum and .acc.
void run(const QueryBlock& b, const KvRows& k, const KvRows& v, int32_t kv_head, float scale,
         float softcap, int32_t kv_begin, int32_t kv_end, AttentionScratch& s, Isa isa) {
    const int32_t n_rows = b.n_tok * b.n_group;
    if (n_rows > s.max_rows || k.head_dim != s.dk || v.head_dim != s.dv)
        fail("attend: a block of {} rows of {}/{} values does not fit scratch made for {} of {}/{}",
             n_rows, k.head_dim, v.head_dim, s.max_rows, s.dk, s.dv);
    const size_t dk = as_size(s.dk), dv_pad = as_size(s.dv_pad);
    for (int32_t t = 0; t < b.n_tok; ++t)
        for (int32_t g = 0; g < b.n_group; ++g)
            s.q_rows[as_size(t * b.n_group + g)] = b.q + as_size(t) * b.q_stride + as_size(g) * dk;
    std::fill_n(s.max.begin(), n_rows, k_neg_inf);
    std::fill_n(s.sum.begin(), n_rows, 0.0f);
    std::fill_n(s.acc.begin(), as_size(n_rows) * dv_pad, 0.0f);

    // Token t's positions [first(t), last(t)], both growing with t.
    auto first = [&](int32_t t) {
        const int32_t f = b.window > 0 ? std::max(0, b.pos0 + t - b.window + 1) : 0;
        return std::max(f, kv_begin);
    };
    auto end = [&](int32_t t) { return std::min(b.pos0 + t + 1, kv_end); };
    const int32_t lo_all = first(0), hi_all = end(b.n_tok - 1);
    if (lo_all >= hi_all) return;

    const TileFn tile = tile_for(isa);
    const ToFloatFn k_to_float = dtype(k.type).to_float;
    const ToFloatFn v_to_float = dtype(v.type).to_float;
    const LoadTileFn load_f16 =
        isa != Isa::scalar && k.type == GgmlType::F16 && v.type == GgmlType::F16
            ? attention_load_f16_avx2()
            : nullptr;
    TileLoad load{k.data + as_size(kv_head) * k.head_stride,
                  v.data + as_size(kv_head) * v.head_stride,
                  k.pos_stride,
                  v.pos_stride,
                  0,
                  0,
                  s.dk,
                  s.dv,
                  s.dv_pad,
                  s.k_tile.data(),
                  s.v_tile.data()};
    TileJob job{s.q_rows.data(),
                n_rows,
                s.dk,
                s.dv_pad,
                0,
                s.lo.data(),
                s.hi.data(),
                s.k_tile.data(),
                s.v_tile.data(),
                scale,
                softcap,
                s.scores.data(),
                s.corr.data(),
                s.max.data(),
                s.sum.data(),
                s.acc.data()};
    for (int32_t t0 = lo_all / k_attention_tile * k_attention_tile; t0 < hi_all;
         t0 += k_attention_tile) {
        const int32_t n_cols = std::min(k_attention_tile, hi_all - t0);
        for (int32_t t = 0; t < b.n_tok; ++t) {
            const int32_t lo = std::clamp(first(t) - t0, 0, n_cols);
            const int32_t hi = std::clamp(end(t) - t0, 0, n_cols);
            std::fill_n(s.lo.begin() + t * b.n_group, b.n_group, lo);
            std::fill_n(s.hi.begin() + t * b.n_group, b.n_group, hi);
        }
        // Keys transposed (a column per position), values as rows.
        load.t0 = t0;
        load.n_cols = n_cols;
        if (load_f16 != nullptr) {
            load_f16(load);
        } else {
            load_tile_rows(load, k_to_float, v_to_float, s.row.data());
        }
        job.n_cols = n_cols;
        tile(job);
    }
}

}  // namespace

AttentionScratch::AttentionScratch(int32_t rows, int32_t head_dim_k, int32_t head_dim_v)
    : max_rows(rows),
      dk(head_dim_k),
      dv(head_dim_v),
      dv_pad((head_dim_v + 31) / 32 * 32),
      k_tile(k_tile_size * as_size(head_dim_k)),
      v_tile(k_tile_size * as_size(dv_pad)),  // the padding stays 0
      row(as_size(std::max(head_dim_k, head_dim_v))),
      scores(as_size(rows) * k_tile_size),
      acc(as_size(rows) * as_size(dv_pad)),
      max(as_size(rows)),
      sum(as_size(rows)),
      corr(as_size(rows)),
      lo(as_size(rows)),
      hi(as_size(rows)),
      q_rows(as_size(rows)) {}

AttentionPart::AttentionPart(int32_t max_rows, int32_t head_dim_v)
    : max(as_size(max_rows)),
      sum(as_size(max_rows)),
      acc(as_size(max_rows) * as_size(head_dim_v)) {}

void attend(const QueryBlock& b, const KvRows& k, const KvRows& v, int32_t kv_head, float scale,
            float softcap, float* out, size_t out_stride, AttentionScratch& s, Isa isa) {
    run(b, k, v, kv_head, scale, softcap, 0, b.pos0 + b.n_tok, s, isa);
    const size_t dv = as_size(s.dv), dv_pad = as_size(s.dv_pad);
    for (int32_t t = 0; t < b.n_tok; ++t) {
        for (int32_t g = 0; g < b.n_group; ++g) {
            const size_t r = as_size(t * b.n_group + g);
            const float inv = 1.0f / s.sum[r];
            const float* acc = s.acc.data() + r * dv_pad;
            float* o = out + as_size(t) * out_stride + as_size(g) * dv;
            for (size_t d = 0; d < dv; ++d) o[d] = acc[d] * inv;
        }
    }
}

void attend_part(const QueryBlock& b, const KvRows& k, const KvRows& v, int32_t kv_head,
                 float scale, float softcap, int32_t kv_begin, int32_t kv_end, AttentionPart& part,
                 AttentionScratch& s, Isa isa) {
    run(b, k, v, kv_head, scale, softcap, kv_begin, kv_end, s, isa);
    const int32_t n_rows = b.n_tok * b.n_group;
    const size_t dv = as_size(s.dv), dv_pad = as_size(s.dv_pad);
    std::copy_n(s.max.begin(), n_rows, part.max.begin());
    std::copy_n(s.sum.begin(), n_rows, part.sum.begin());
    for (size_t r = 0; r < as_size(n_rows); ++r)
        std::copy_n(s.acc.begin() + static_cast<ptrdiff_t>(r * dv_pad), dv,
                    part.acc.begin() + static_cast<ptrdiff_t>(r * dv));
}

void attention_merge(const AttentionPart* parts, int32_t n_parts, int32_t n_tok, int32_t n_group,
                     int32_t head_dim_v, float* out, size_t out_stride) {
    const size_t dv = as_size(head_dim_v);
    for (int32_t t = 0; t < n_tok; ++t) {
        for (int32_t g = 0; g < n_group; ++g) {
            const size_t r = as_size(t * n_group + g);
            float m = k_neg_inf;
            for (int32_t i = 0; i < n_parts; ++i) m = std::max(m, parts[i].max[r]);
            float* o = out + as_size(t) * out_stride + as_size(g) * dv;
            std::fill_n(o, dv, 0.0f);
            float l = 0;
            for (int32_t i = 0; i < n_parts; ++i) {
                if (parts[i].sum[r] == 0.0f) continue;  // no positions in this part
                const float w = std::exp(parts[i].max[r] - m);
                l += w * parts[i].sum[r];
                const float* acc = parts[i].acc.data() + r * dv;
                for (size_t d = 0; d < dv; ++d) o[d] += w * acc[d];
            }
            const float inv = 1.0f / l;
            for (size_t d = 0; d < dv; ++d) o[d] *= inv;
        }
    }
}

void attend(const float* q, int32_t n_group, const KvRows& k, const KvRows& v, int32_t kv_head,
            int32_t begin, int32_t end, float scale, float softcap, float* out,
            AttentionScratch& scratch, Isa isa) {
    const QueryBlock b{q, 0, 1, n_group, end - 1, end - begin};
    attend(b, k, v, kv_head, scale, softcap, out, 0, scratch, isa);
}

}  // namespace edgeq::cpu
