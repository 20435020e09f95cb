// The forward pass (decoder.h). A step runs its tokens through every layer together (weight
// products are matmuls with one row per token), writes their keys and values into their
// sequences' caches and attends causally over them.
#include "decoder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "edgeq/core/error.h"
#include "edgeq/core/mapped-file.h"
#include "edgeq/quant/dtype.h"
#include "edgeq/runtime/cpu/ops.h"

namespace edgeq::runtime {

namespace {

size_t as_size(int64_t n) {
    return static_cast<size_t>(n);
}

const GgufModel& as_gguf_model(const LoadedModel& model) {
    const auto* m = dynamic_cast<const GgufModel*>(&model);
    if (m == nullptr) fail("Session: the model was not made by LoadedModel::load");
    return *m;
}

}  // namespace

Decoder::Decoder(const LoadedModel& loaded, const SessionOptions& opts, int32_t seqs,
                 int32_t out_max)
    : model(as_gguf_model(loaded)),
      spec(model.spec()),
      w(model.weights()),
      options(opts),
      n_seq(seqs),
      pool(opts.n_threads) {
    const ModelSpec& s = spec;
    n_ctx = options.n_ctx > 0 ? std::min(options.n_ctx, s.n_ctx_train) : s.n_ctx_train;
    n_batch = static_cast<int32_t>(std::clamp<int64_t>(options.n_batch, 1, int64_t{n_seq} * n_ctx));
    n_out_max = std::clamp(out_max, 1, n_batch);
    n_past.assign(as_size(n_seq), 0);
    rows.resize(as_size(n_batch));
    for (int32_t i = 0; i < n_batch; ++i) rows[as_size(i)] = i;
    rope_global = s.rope_global;
    rope_local = s.rope_local;
    if (!s.rope_long_factors.empty() && n_ctx > s.rope_original_ctx) {
        rope_global.factors = s.rope_long_factors;
        rope_local.factors = s.rope_long_factors;
    }

    kv_type = options.kv_f32 ? GgmlType::F32 : options.kv_q8_0 ? GgmlType::Q8_0 : GgmlType::F16;
    const DType& kv = dtype(kv_type);
    if (s.head_dim_k % kv.block_size != 0 || s.head_dim_v % kv.block_size != 0)
        fail(
            "Session: a {} KV cache needs head widths that are multiples of {} (this model has "
            "{} and {})",
            kv.name, kv.block_size, s.head_dim_k, s.head_dim_v);
    k_row_bytes = row_size(kv_type, s.head_dim_k);
    v_row_bytes = row_size(kv_type, s.head_dim_v);
    k_seq_bytes = as_size(n_ctx) * as_size(s.n_head_kv) * k_row_bytes;
    v_seq_bytes = as_size(n_ctx) * as_size(s.n_head_kv) * v_row_bytes;
    k_cache.assign(as_size(s.n_layer), std::vector<uint8_t>(as_size(n_seq) * k_seq_bytes));
    v_cache.assign(as_size(s.n_layer), std::vector<uint8_t>(as_size(n_seq) * v_seq_bytes));

    n_q = int64_t{s.n_head} * s.head_dim_k;
    n_k = int64_t{s.n_head_kv} * s.head_dim_k;
    n_v = int64_t{s.n_head_kv} * s.head_dim_v;
    n_attn = int64_t{s.n_head} * s.head_dim_v;
    const size_t b = as_size(n_batch);
    tok_seq.resize(b);
    tok_pos.resize(b);
    runs.resize(b);
    run_units.resize(b + 1);
    x.resize(b * as_size(s.n_embd));
    h.resize(b * as_size(s.n_embd));
    h_out.resize(as_size(n_out_max) * as_size(s.n_embd));
    proj.resize(b * as_size(s.n_embd));
    q.resize(b * as_size(n_q));
    k.resize(b * as_size(n_k));
    v.resize(b * as_size(n_v));
    if (s.fused_qkv) qkv.resize(b * as_size(n_q + n_k + n_v));
    attn.resize(b * as_size(n_attn));
    gate.resize(b * as_size(s.n_ff));
    up.resize(b * as_size(s.n_ff) * (s.fused_gate_up ? 2 : 1));
    const size_t half = as_size(s.n_rot / 2);
    cos_global.resize(b * half);
    sin_global.resize(b * half);
    cos_local.resize(b * half);
    sin_local.resize(b * half);
    const int32_t group = s.n_head / s.n_head_kv;
    attention_block_tokens = std::clamp(64 / group, 1, n_batch);
    for (int t = 0; t < pool.size(); ++t)
        attention_scratch.emplace_back(attention_block_tokens * group, s.head_dim_k, s.head_dim_v);
    max_parts = as_size(n_ctx / k_attention_split + 1);
    attention_parts.assign(as_size(n_seq) * as_size(s.n_head_kv) * max_parts,
                           cpu::AttentionPart(group, s.head_dim_v));
    hidden_sum.resize(as_size(s.n_embd));
}

void Decoder::project(const Matrix& m, const float* in, int32_t n, float* out) {
    if (options.observer != nullptr) options.observer->observe(m.name, in, n, m.n_in);
    if (m.packed != nullptr) {
        cpu::matmul(*m.packed, in, n, out, pool, matmul_scratch);
    } else {
        cpu::matmul(m.type, m.data, m.n_out, m.n_in, in, n, out, pool, matmul_scratch);
    }
}

// A page fault on a file mapping maps more than the page it needs: the kernel's fault-around
// (64 KiB), and on this machine's Linux 6.18 far more (512 random rows of Gemma 3 270M's
// embedding mapped ~135 MiB of its 170 MiB, as if the page cache's large folios were mapped
// whole). Give back the aligned 2 MiB around each row as soon as it is read, so that the
// lookup of a tied, packed embedding, whose rows are in memory packed already, does not fill
// memory with its file's pages (given back once per batch, they made that prompt peak at
// 436 MiB; per row, ~300 MiB).
void Decoder::release_embedding_row(int32_t id, size_t embd_row) const {
    constexpr uintptr_t k_window = 2 << 20;
    const auto* first = static_cast<const uint8_t*>(w.token_embd.data);
    const uint8_t* last = first + embd_row * static_cast<size_t>(w.token_embd.n_out);
    const uintptr_t row = reinterpret_cast<uintptr_t>(first + as_size(id) * embd_row);
    const auto* from = std::max(first, reinterpret_cast<const uint8_t*>(row / k_window * k_window));
    const auto* to = std::min(last, reinterpret_cast<const uint8_t*>(
                                        (row + embd_row + k_window - 1) / k_window * k_window));
    release_mapped_range(from, static_cast<size_t>(to - from));
}

// Projections of one input: for a few tokens (below every matrix's GEMM) with every matrix
// packed for one activation type, one job of the pool (cpu::matmul_shared), the same bits as
// one project() each. (The loader packs every matrix for the same ISA, and matrices of one
// input share n_in.)
void Decoder::project_shared(std::initializer_list<std::pair<const Matrix*, float*>> outs,
                             const float* in, int32_t n) {
    std::array<cpu::PackedProduct, 3> products{};
    int count = 0;
    bool shared = options.observer == nullptr && outs.size() <= products.size();
    for (const auto& [m, y] : outs) {
        const cpu::PackedWeights* p = m->packed.get();
        shared = shared && p != nullptr && !cpu::uses_gemm(*p, n) &&
                 (count == 0 ||
                  cpu::activation_type(p->type()) == cpu::activation_type(products[0].w->type()));
        if (!shared) break;
        products[as_size(count++)] = {p, y};
    }
    if (shared) {
        cpu::matmul_shared(products.data(), count, in, n, pool, matmul_scratch);
        return;
    }
    for (const auto& [m, y] : outs) project(*m, in, n, y);
}

cpu::KvRows Decoder::k_rows(int32_t il, int32_t seq) const {
    return {kv_type, k_cache[as_size(il)].data() + as_size(seq) * k_seq_bytes,
            as_size(spec.n_head_kv) * k_row_bytes, k_row_bytes, spec.head_dim_k};
}

cpu::KvRows Decoder::v_rows(int32_t il, int32_t seq) const {
    return {kv_type, v_cache[as_size(il)].data() + as_size(seq) * v_seq_bytes,
            as_size(spec.n_head_kv) * v_row_bytes, v_row_bytes, spec.head_dim_v};
}

// Every run's attention as work units of one parallel loop: a split run (one token) has
// n_head_kv x n_parts units, a part of its positions each, merged after the loop in part order
// (the parts sit at fixed multiples of k_attention_split, not set by the thread count, so the
// result is the same on any number of threads); any other run has n_head_kv units per block of
// attention_block_tokens queries, every tile of keys and values converted once for a block.
void Decoder::attention(int32_t il) {
    const ModelSpec& s = spec;
    const bool local = s.is_local(il);
    const int32_t window = local ? s.sliding_window : 0;
    const int32_t n_head_kv = s.n_head_kv;
    for (int32_t r = 0; r < n_runs; ++r) {
        Run& run = runs[as_size(r)];
        if (run.slot >= 0) {
            const int32_t first = window > 0 ? std::max(0, run.pos0 - window + 1) : 0;
            run.c0 = first / k_attention_split;
            run.n_parts = run.pos0 / k_attention_split - run.c0 + 1;
        }
        run_units[as_size(r) + 1] = run_units[as_size(r)] + int64_t{run.n_parts} * n_head_kv;
    }
    const int32_t group = s.n_head / n_head_kv;
    // Captured as [this, &job]: small enough for std::function to hold without allocating.
    struct Job {
        int32_t il, window, group;
        size_t q_head, out_head;
    } job{il, window, group, as_size(group) * as_size(s.head_dim_k),
          as_size(group) * as_size(s.head_dim_v)};
    pool.parallel_for(
        run_units[as_size(n_runs)], 1, [this, &job](int64_t begin, int64_t end, int t) {
            const ModelSpec& s = spec;
            const int32_t n_head_kv = s.n_head_kv;
            cpu::AttentionScratch& scratch = attention_scratch[as_size(t)];
            for (int64_t unit = begin; unit < end; ++unit) {
                const auto it =
                    std::upper_bound(run_units.begin() + 1, run_units.begin() + n_runs + 1, unit);
                const int32_t r = static_cast<int32_t>(it - run_units.begin()) - 1;
                const Run& run = runs[as_size(r)];
                const int64_t u = unit - run_units[as_size(r)];
                const cpu::KvRows kr = k_rows(job.il, run.seq), vr = v_rows(job.il, run.seq);
                if (run.slot >= 0) {
                    const int32_t g = static_cast<int32_t>(u / run.n_parts);
                    const int32_t c = static_cast<int32_t>(u % run.n_parts);
                    const cpu::QueryBlock b{
                        q.data() + as_size(run.i0) * as_size(n_q) + as_size(g) * job.q_head,
                        0,
                        1,
                        job.group,
                        run.pos0,
                        job.window};
                    const int32_t lo = (run.c0 + c) * k_attention_split;
                    const size_t part =
                        (as_size(run.slot) * as_size(n_head_kv) + as_size(g)) * max_parts +
                        as_size(c);
                    cpu::attend_part(b, kr, vr, g, s.attn_scale, s.attn_softcap, lo,
                                     lo + k_attention_split, attention_parts[part], scratch);
                } else {
                    const int32_t blk = static_cast<int32_t>(u / n_head_kv);
                    const int32_t g = static_cast<int32_t>(u % n_head_kv);
                    const int32_t i0 = blk * attention_block_tokens;
                    const int32_t n_tok = std::min(attention_block_tokens, run.n_tok - i0);
                    const size_t row = as_size(run.i0 + i0);
                    const cpu::QueryBlock b{q.data() + row * as_size(n_q) + as_size(g) * job.q_head,
                                            as_size(n_q),
                                            n_tok,
                                            job.group,
                                            run.pos0 + i0,
                                            job.window};
                    cpu::attend(b, kr, vr, g, s.attn_scale, s.attn_softcap,
                                attn.data() + row * as_size(n_attn) + as_size(g) * job.out_head,
                                as_size(n_attn), scratch);
                }
            }
        });
    for (int32_t r = 0; r < n_runs; ++r) {
        const Run& run = runs[as_size(r)];
        if (run.slot < 0) continue;
        for (int32_t g = 0; g < n_head_kv; ++g) {
            const size_t part = (as_size(run.slot) * as_size(n_head_kv) + as_size(g)) * max_parts;
            cpu::attention_merge(
                &attention_parts[part], run.n_parts, 1, group, s.head_dim_v,
                attn.data() + as_size(run.i0) * as_size(n_attn) + as_size(g) * job.out_head, 0);
        }
    }
}

void Decoder::layer(int32_t il, int32_t n) {
    const ModelSpec& s = spec;
    const LayerWeights& l = w.layers[as_size(il)];
    const size_t embd = as_size(s.n_embd);

    for (int32_t i = 0; i < n; ++i)
        cpu::rms_norm(&x[i * embd], l.attn_norm.data(), &h[i * embd], s.n_embd, s.norm_eps);

    // Queries, keys and values.
    if (s.fused_qkv) {
        project(l.wqkv, h.data(), n, qkv.data());
        const size_t row = as_size(n_q + n_k + n_v);
        for (int32_t i = 0; i < n; ++i) {
            const float* r = &qkv[i * row];
            std::copy(r, r + n_q, &q[i * as_size(n_q)]);
            std::copy(r + n_q, r + n_q + n_k, &k[i * as_size(n_k)]);
            std::copy(r + n_q + n_k, r + row, &v[i * as_size(n_v)]);
        }
    } else {
        project_shared({{&l.wq, q.data()}, {&l.wk, k.data()}, {&l.wv, v.data()}}, h.data(), n);
    }
    if (s.qkv_bias) {
        for (int32_t i = 0; i < n; ++i) {
            for (int64_t j = 0; j < n_q; ++j)
                q[i * as_size(n_q) + as_size(j)] += l.q_bias[as_size(j)];
            for (int64_t j = 0; j < n_k; ++j)
                k[i * as_size(n_k) + as_size(j)] += l.k_bias[as_size(j)];
            for (int64_t j = 0; j < n_v; ++j)
                v[i * as_size(n_v) + as_size(j)] += l.v_bias[as_size(j)];
        }
    }
    if (s.qk_norm) {
        const size_t hd = as_size(s.head_dim_k);
        for (size_t r = 0; r < as_size(n) * as_size(s.n_head); ++r)
            cpu::rms_norm(&q[r * hd], l.q_norm.data(), &q[r * hd], s.head_dim_k, s.norm_eps);
        for (size_t r = 0; r < as_size(n) * as_size(s.n_head_kv); ++r)
            cpu::rms_norm(&k[r * hd], l.k_norm.data(), &k[r * hd], s.head_dim_k, s.norm_eps);
    }
    const bool local = s.is_local(il);
    const float* cos = local ? cos_local.data() : cos_global.data();
    const float* sin = local ? sin_local.data() : sin_global.data();
    const size_t half = as_size(s.n_rot / 2);
    for (int32_t i = 0; i < n; ++i) {
        cpu::rope_apply(&q[i * as_size(n_q)], s.n_head, s.head_dim_k, s.n_rot, s.rope_style,
                        cos + i * half, sin + i * half);
        cpu::rope_apply(&k[i * as_size(n_k)], s.n_head_kv, s.head_dim_k, s.n_rot, s.rope_style,
                        cos + i * half, sin + i * half);
    }

    // Into the cache, then attention over it.
    const FromFloatRefFn store = dtype(kv_type).from_float_ref;
    for (int32_t i = 0; i < n; ++i) {
        const size_t pos = as_size(tok_pos[as_size(i)]);
        uint8_t* kc = k_cache[as_size(il)].data() + as_size(tok_seq[as_size(i)]) * k_seq_bytes;
        uint8_t* vc = v_cache[as_size(il)].data() + as_size(tok_seq[as_size(i)]) * v_seq_bytes;
        for (int32_t g = 0; g < s.n_head_kv; ++g) {
            store(&k[i * as_size(n_k) + as_size(g) * as_size(s.head_dim_k)],
                  kc + (pos * as_size(s.n_head_kv) + as_size(g)) * k_row_bytes, s.head_dim_k);
            store(&v[i * as_size(n_v) + as_size(g) * as_size(s.head_dim_v)],
                  vc + (pos * as_size(s.n_head_kv) + as_size(g)) * v_row_bytes, s.head_dim_v);
        }
    }
    attention(il);
    project(l.wo, attn.data(), n, proj.data());
    for (int32_t i = 0; i < n; ++i) {
        float* p = &proj[i * embd];
        if (s.post_norms) cpu::rms_norm(p, l.post_attn_norm.data(), p, s.n_embd, s.norm_eps);
        float* xi = &x[i * embd];
        for (size_t j = 0; j < embd; ++j) xi[j] += p[j];
    }

    // Feed-forward.
    for (int32_t i = 0; i < n; ++i)
        cpu::rms_norm(&x[i * embd], l.ffn_norm.data(), &h[i * embd], s.n_embd, s.norm_eps);
    const size_t ff = as_size(s.n_ff);
    if (s.fused_gate_up) {
        project(l.up, h.data(), n, up.data());
        for (int32_t i = 0; i < n; ++i) {
            const float* r = &up[i * 2 * ff];
            cpu::gated_activation(s.activation, r, r + ff, &gate[i * ff], s.n_ff);
        }
    } else {
        project_shared({{&l.gate, gate.data()}, {&l.up, up.data()}}, h.data(), n);
        cpu::gated_activation(s.activation, gate.data(), up.data(), gate.data(),
                              int64_t{n} * s.n_ff);
    }
    project(l.down, gate.data(), n, proj.data());
    for (int32_t i = 0; i < n; ++i) {
        float* p = &proj[i * embd];
        if (s.post_norms) cpu::rms_norm(p, l.post_ffw_norm.data(), p, s.n_embd, s.norm_eps);
        float* xi = &x[i * embd];
        for (size_t j = 0; j < embd; ++j) xi[j] += p[j];
    }
}

void Decoder::forward(const int32_t* ids, const int32_t* seqs, int32_t n, const int32_t* out_rows,
                      int32_t n_out, float* logits_out) {
    const ModelSpec& s = spec;
    const size_t embd = as_size(s.n_embd);
    // Positions, and the runs of tokens of one sequence.
    n_runs = 0;
    int32_t n_split = 0;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t seq = seqs[i];  // checked by the caller, as are ids and the room left
        tok_seq[as_size(i)] = seq;
        tok_pos[as_size(i)] = n_past[as_size(seq)]++;
        if (i > 0 && seq == seqs[i - 1]) {
            ++runs[as_size(n_runs - 1)].n_tok;
            continue;
        }
        runs[as_size(n_runs++)] = Run{seq, i, 1, tok_pos[as_size(i)], -1, 0, 0};
    }
    for (int32_t r = 0; r < n_runs; ++r) {
        Run& run = runs[as_size(r)];
        if (run.n_tok == 1 && n_split < n_seq) {
            run.slot = n_split++;
        } else {
            run.n_parts = (run.n_tok + attention_block_tokens - 1) / attention_block_tokens;
        }
    }
    run_units[0] = 0;

    const ToFloatFn embd_to_float = dtype(w.token_embd.type).to_float;
    const size_t embd_row = row_size(w.token_embd.type, s.n_embd);
    for (int32_t i = 0; i < n; ++i) {
        float* xi = &x[i * embd];
        embd_to_float(static_cast<const uint8_t*>(w.token_embd.data) + as_size(ids[i]) * embd_row,
                      xi, s.n_embd);
        if (w.embd_rows_released) release_embedding_row(ids[i], embd_row);
        if (s.embedding_scale != 1.0f)
            for (size_t j = 0; j < embd; ++j) xi[j] *= s.embedding_scale;
    }
    const size_t half = as_size(s.n_rot / 2);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t pos = tok_pos[as_size(i)];
        cpu::rope_cos_sin(rope_global, s.n_rot, pos, &cos_global[i * half], &sin_global[i * half]);
        cpu::rope_cos_sin(rope_local, s.n_rot, pos, &cos_local[i * half], &sin_local[i * half]);
    }

    for (int32_t il = 0; il < s.n_layer; ++il) layer(il, n);

    for (int32_t i = 0; i < n; ++i) {
        cpu::rms_norm(&x[i * embd], w.output_norm.data(), &h[i * embd], s.n_embd, s.norm_eps);
        for (size_t j = 0; j < embd; ++j) hidden_sum[j] += h[i * embd + j];
    }
    if (n_out == 0) return;
    // The rows that want logits, gathered unless they already sit together.
    bool together = true;
    for (int32_t j = 1; j < n_out; ++j) together = together && out_rows[j] == out_rows[0] + j;
    const float* in = &h[as_size(out_rows[0]) * embd];
    if (!together) {
        for (int32_t j = 0; j < n_out; ++j)
            std::copy_n(&h[as_size(out_rows[j]) * embd], embd, &h_out[as_size(j) * embd]);
        in = h_out.data();
    }
    project(w.output, in, n_out, logits_out);
    if (s.final_softcap > 0) cpu::soft_cap(logits_out, int64_t{n_out} * s.n_vocab, s.final_softcap);
}

}  // namespace edgeq::runtime
