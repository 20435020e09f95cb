// The forward pass. A decode() runs its tokens through every layer together (weight products
// are matmuls with one row per token), writes their keys and values into the cache and
// attends causally over it. Every buffer is sized when the Session is made, for n_batch
// tokens; the token loop allocates nothing.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/quant/dtype.h"
#include "edgeq/runtime/cpu/attention.h"
#include "edgeq/runtime/cpu/matmul.h"
#include "edgeq/runtime/cpu/ops.h"
#include "edgeq/runtime/engine.h"
#include "loaded-model.h"

namespace edgeq {

using runtime::LayerWeights;
using runtime::Matrix;

namespace {

size_t as_size(int64_t n) {
    return static_cast<size_t>(n);
}

const runtime::GgufModel& as_gguf_model(const LoadedModel& model) {
    const auto* m = dynamic_cast<const runtime::GgufModel*>(&model);
    if (m == nullptr) fail("Session: the model was not made by LoadedModel::load");
    return *m;
}

}  // namespace

struct Session::Impl {
    Impl(const LoadedModel& model, const SessionOptions& options);

    void forward(const int32_t* ids, int32_t n, float* logits_out, bool last_only);
    void layer(int32_t il, int32_t n);
    void attention(int32_t il, int32_t n);
    void project(const Matrix& w, const float* x, int32_t n, float* y);

    const runtime::GgufModel& model;
    const ModelSpec& spec;
    const runtime::ModelWeights& w;
    SessionOptions options;
    int32_t n_ctx = 0;
    int32_t n_batch = 0;
    int32_t n_past = 0;
    ThreadPool pool;
    cpu::MatmulScratch matmul_scratch;

    // KV cache: per layer, n_ctx positions of n_head_kv rows of head_dim values.
    GgmlType kv_type = GgmlType::F16;
    size_t k_row_bytes = 0, v_row_bytes = 0;
    std::vector<std::vector<uint8_t>> k_cache, v_cache;

    // Activations for n_batch tokens.
    int64_t n_q = 0, n_k = 0, n_v = 0, n_attn = 0;
    std::vector<float> x, h, q, k, v, qkv, attn, proj, gate, up;
    // The spec's ropes, with LongRoPE's long factors when n_ctx needs them.
    RopeParams rope_global, rope_local;
    std::vector<float> cos_global, sin_global, cos_local, sin_local;  // n_batch x n_rot/2
    std::vector<cpu::AttentionScratch> attention_scratch;             // one per thread
    // Prompts: query tokens per attention block. One token: its positions are split into
    // parts of k_attention_split, n_head_kv x max_parts of them.
    static constexpr int32_t k_attention_split = 256;
    int32_t attention_block_tokens = 1;
    size_t max_parts = 0;
    std::vector<cpu::AttentionPart> attention_parts;

    // Results of the last decode().
    std::vector<float> logits;  // n_vocab, or n_tokens x n_vocab with all_logits
    int32_t last_n_tokens = 0;
    std::vector<double> hidden_sum;
};

Session::Impl::Impl(const LoadedModel& loaded, const SessionOptions& opts)
    : model(as_gguf_model(loaded)),
      spec(model.spec()),
      w(model.weights()),
      options(opts),
      pool(opts.n_threads) {
    const ModelSpec& s = spec;
    n_ctx = options.n_ctx > 0 ? std::min(options.n_ctx, s.n_ctx_train) : s.n_ctx_train;
    n_batch = std::clamp(options.n_batch, 1, n_ctx);
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
    const size_t per_layer_k = as_size(n_ctx) * as_size(s.n_head_kv) * k_row_bytes;
    const size_t per_layer_v = as_size(n_ctx) * as_size(s.n_head_kv) * v_row_bytes;
    k_cache.assign(as_size(s.n_layer), std::vector<uint8_t>(per_layer_k));
    v_cache.assign(as_size(s.n_layer), std::vector<uint8_t>(per_layer_v));

    n_q = int64_t{s.n_head} * s.head_dim_k;
    n_k = int64_t{s.n_head_kv} * s.head_dim_k;
    n_v = int64_t{s.n_head_kv} * s.head_dim_v;
    n_attn = int64_t{s.n_head} * s.head_dim_v;
    const size_t b = as_size(n_batch);
    x.resize(b * as_size(s.n_embd));
    h.resize(b * as_size(s.n_embd));
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
    attention_parts.assign(max_parts * as_size(s.n_head_kv),
                           cpu::AttentionPart(group, s.head_dim_v));

    logits.resize(as_size(s.n_vocab));
    hidden_sum.resize(as_size(s.n_embd));
}

void Session::Impl::project(const Matrix& m, const float* in, int32_t n, float* out) {
    if (options.observer != nullptr) options.observer->observe(m.name, in, n, m.n_in);
    cpu::matmul(m.type, m.data, m.n_out, m.n_in, in, n, out, pool, matmul_scratch);
}

void Session::Impl::attention(int32_t il, int32_t n) {
    const ModelSpec& s = spec;
    const bool local = s.is_local(il);
    const int32_t group = s.n_head / s.n_head_kv;
    const cpu::KvRows k_rows{kv_type, k_cache[as_size(il)].data(),
                             as_size(s.n_head_kv) * k_row_bytes, k_row_bytes, s.head_dim_k};
    const cpu::KvRows v_rows{kv_type, v_cache[as_size(il)].data(),
                             as_size(s.n_head_kv) * v_row_bytes, v_row_bytes, s.head_dim_v};
    const int32_t window = local ? s.sliding_window : 0;
    const size_t q_head = as_size(group) * as_size(s.head_dim_k);
    const size_t out_head = as_size(group) * as_size(s.head_dim_v);
    if (n == 1) {
        // One query: its positions split into parts at fixed multiples of k_attention_split (not
        // by thread count, so the result is the same on any number of threads), then merged.
        const int32_t pos = n_past;
        const int32_t first = window > 0 ? std::max(0, pos - window + 1) : 0;
        const int32_t c0 = first / k_attention_split;
        const int32_t n_parts = pos / k_attention_split - c0 + 1;
        struct Job {
            const cpu::KvRows* k;
            const cpu::KvRows* v;
            int32_t group, window, pos, c0, n_parts;
        } job{&k_rows, &v_rows, group, window, pos, c0, n_parts};
        pool.parallel_for(
            int64_t{n_parts} * s.n_head_kv, 1, [this, &job](int64_t begin, int64_t end, int t) {
                for (int64_t unit = begin; unit < end; ++unit) {
                    const int32_t g = static_cast<int32_t>(unit / job.n_parts);
                    const int32_t c = static_cast<int32_t>(unit % job.n_parts);
                    const cpu::QueryBlock b{
                        q.data() + as_size(g) * as_size(job.group) * as_size(spec.head_dim_k),
                        0,
                        1,
                        job.group,
                        job.pos,
                        job.window};
                    const int32_t lo = (job.c0 + c) * k_attention_split;
                    cpu::attend_part(b, *job.k, *job.v, g, spec.attn_scale, spec.attn_softcap, lo,
                                     lo + k_attention_split,
                                     attention_parts[as_size(g) * max_parts + as_size(c)],
                                     attention_scratch[as_size(t)]);
                }
            });
        for (int32_t g = 0; g < s.n_head_kv; ++g)
            cpu::attention_merge(&attention_parts[as_size(g) * max_parts], n_parts, 1, group,
                                 s.head_dim_v, attn.data() + as_size(g) * out_head, 0);
        return;
    }
    // Blocks of attention_block_tokens queries per KV head: every tile of keys and values is
    // converted once for all of a block's rows.
    const int32_t n_blocks = (n + attention_block_tokens - 1) / attention_block_tokens;
    struct Job {
        const cpu::KvRows* k;
        const cpu::KvRows* v;
        int32_t group, n_head_kv, n, window;
        size_t q_head, out_head;
    } job{&k_rows, &v_rows, group, s.n_head_kv, n, window, q_head, out_head};
    pool.parallel_for(
        int64_t{n_blocks} * s.n_head_kv, 1, [this, &job](int64_t begin, int64_t end, int t) {
            for (int64_t unit = begin; unit < end; ++unit) {
                const int32_t blk = static_cast<int32_t>(unit / job.n_head_kv);
                const int32_t g = static_cast<int32_t>(unit % job.n_head_kv);
                const int32_t i0 = blk * attention_block_tokens;
                const int32_t n_tok = std::min(attention_block_tokens, job.n - i0);
                const cpu::QueryBlock b{
                    q.data() + as_size(i0) * as_size(n_q) + as_size(g) * job.q_head,
                    as_size(n_q),
                    n_tok,
                    job.group,
                    n_past + i0,
                    job.window};
                cpu::attend(b, *job.k, *job.v, g, spec.attn_scale, spec.attn_softcap,
                            attn.data() + as_size(i0) * as_size(n_attn) + as_size(g) * job.out_head,
                            as_size(n_attn), attention_scratch[as_size(t)]);
            }
        });
}

void Session::Impl::layer(int32_t il, int32_t n) {
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
        project(l.wq, h.data(), n, q.data());
        project(l.wk, h.data(), n, k.data());
        project(l.wv, h.data(), n, v.data());
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
    uint8_t* kc = k_cache[as_size(il)].data();
    uint8_t* vc = v_cache[as_size(il)].data();
    for (int32_t i = 0; i < n; ++i) {
        const size_t pos = as_size(n_past + i);
        for (int32_t g = 0; g < s.n_head_kv; ++g) {
            store(&k[i * as_size(n_k) + as_size(g) * as_size(s.head_dim_k)],
                  kc + (pos * as_size(s.n_head_kv) + as_size(g)) * k_row_bytes, s.head_dim_k);
            store(&v[i * as_size(n_v) + as_size(g) * as_size(s.head_dim_v)],
                  vc + (pos * as_size(s.n_head_kv) + as_size(g)) * v_row_bytes, s.head_dim_v);
        }
    }
    attention(il, n);
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
        project(l.gate, h.data(), n, gate.data());
        project(l.up, h.data(), n, up.data());
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

// Runs n <= n_batch tokens at positions n_past.. and writes the logits of every token, or of
// the last one only, to logits_out.
void Session::Impl::forward(const int32_t* ids, int32_t n, float* logits_out, bool last_only) {
    const ModelSpec& s = spec;
    const size_t embd = as_size(s.n_embd);
    const ToFloatFn embd_to_float = dtype(w.token_embd.type).to_float;
    const size_t embd_row = row_size(w.token_embd.type, s.n_embd);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t id = ids[i];  // checked by decode()
        float* xi = &x[i * embd];
        embd_to_float(static_cast<const uint8_t*>(w.token_embd.data) + as_size(id) * embd_row, xi,
                      s.n_embd);
        if (s.embedding_scale != 1.0f)
            for (size_t j = 0; j < embd; ++j) xi[j] *= s.embedding_scale;
    }
    const size_t half = as_size(s.n_rot / 2);
    for (int32_t i = 0; i < n; ++i) {
        cpu::rope_cos_sin(rope_global, s.n_rot, n_past + i, &cos_global[i * half],
                          &sin_global[i * half]);
        cpu::rope_cos_sin(rope_local, s.n_rot, n_past + i, &cos_local[i * half],
                          &sin_local[i * half]);
    }

    for (int32_t il = 0; il < s.n_layer; ++il) layer(il, n);

    for (int32_t i = 0; i < n; ++i) {
        cpu::rms_norm(&x[i * embd], w.output_norm.data(), &h[i * embd], s.n_embd, s.norm_eps);
        for (size_t j = 0; j < embd; ++j) hidden_sum[j] += h[i * embd + j];
    }
    n_past += n;
    if (logits_out == nullptr) return;
    const int32_t first = last_only ? n - 1 : 0;
    const int32_t rows = n - first;
    project(w.output, &h[as_size(first) * embd], rows, logits_out);
    if (s.final_softcap > 0) cpu::soft_cap(logits_out, int64_t{rows} * s.n_vocab, s.final_softcap);
}

Session::Session(const LoadedModel& model, const SessionOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {}

Session::~Session() = default;

const float* Session::decode(std::span<const int32_t> tokens) {
    Impl& m = *impl_;
    if (tokens.empty()) fail("decode: no tokens");
    const int64_t n_total = static_cast<int64_t>(tokens.size());
    if (m.n_past + n_total > m.n_ctx)
        fail("decode: {} tokens after {} would overflow the context of {}", n_total, m.n_past,
             m.n_ctx);
    for (const int32_t id : tokens) {
        if (id < 0 || id >= m.spec.n_vocab)
            fail("decode: token id {} is outside the vocabulary (0..{})", id, m.spec.n_vocab - 1);
    }
    const size_t n_vocab = as_size(m.spec.n_vocab);
    if (m.options.all_logits && m.logits.size() < as_size(n_total) * n_vocab)
        m.logits.resize(as_size(n_total) * n_vocab);  // grows with the longest decode only
    std::fill(m.hidden_sum.begin(), m.hidden_sum.end(), 0.0);
    m.last_n_tokens = 0;
    for (int64_t done = 0; done < n_total;) {
        const int32_t n = static_cast<int32_t>(std::min<int64_t>(m.n_batch, n_total - done));
        const bool last_chunk = done + n == n_total;
        float* out = m.options.all_logits ? m.logits.data() + as_size(done) * n_vocab
                     : last_chunk         ? m.logits.data()
                                          : nullptr;
        m.forward(tokens.data() + done, n, out, !m.options.all_logits);
        done += n;
    }
    m.last_n_tokens = static_cast<int32_t>(n_total);
    return m.options.all_logits ? m.logits.data() + as_size(n_total - 1) * n_vocab
                                : m.logits.data();
}

const float* Session::logits_at(int32_t i) const {
    const Impl& m = *impl_;
    if (i < 0 || i >= m.last_n_tokens)
        fail("logits_at: position {} is outside the last decode's {} tokens", i, m.last_n_tokens);
    if (m.options.all_logits) return m.logits.data() + as_size(i) * as_size(m.spec.n_vocab);
    if (i != m.last_n_tokens - 1)
        fail("logits_at: only the last position is kept (SessionOptions::all_logits is off)");
    return m.logits.data();
}

std::vector<float> Session::mean_hidden() const {
    const Impl& m = *impl_;
    if (m.last_n_tokens == 0) fail("mean_hidden: nothing decoded yet");
    std::vector<float> mean(m.hidden_sum.size());
    for (size_t j = 0; j < mean.size(); ++j)
        mean[j] = static_cast<float>(m.hidden_sum[j] / m.last_n_tokens);
    return mean;
}

int32_t Session::n_past() const {
    return impl_->n_past;
}

int32_t Session::n_ctx() const {
    return impl_->n_ctx;
}

void Session::reset() {
    impl_->n_past = 0;
}

void Session::truncate(int32_t n_past) {
    if (n_past < 0 || n_past > impl_->n_past)
        fail("truncate: {} is outside the cache's 0..{} tokens", n_past, impl_->n_past);
    impl_->n_past = n_past;
}

}  // namespace edgeq
