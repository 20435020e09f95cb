// Small random models of the supported families written with GgufWriter (F32 tensors), for the
// runtime's tests: Synth describes one, TempModel writes it to a temporary file that it removes.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "edgeq/formats/gguf-writer.h"
#include "edgeq/quant/dtype.h"
#include "test-random.h"

namespace edgeq::testing {

struct Synth {
    std::string arch = "qwen3";
    int n_layer = 2, n_embd = 32, n_head = 4, n_head_kv = 2, head_dim = 16, n_ff = 48;
    int n_vocab = 61;
    bool post_norms = false, qk_norm = true, tied = false;
    int sliding_window = 0;
    bool all_local = false;         // every layer slides (sliding_window_pattern as flags)
    std::vector<std::string> skip;  // tensors to leave out
    std::vector<std::pair<std::string, GgufValue>> extra;  // more metadata
    bool fused = false;  // Phi-3's attn_qkv and gate-and-up ffn_up
    int n_ctx_train = 256;
    std::vector<float> rope_short, rope_long;  // rope_factors_short/long.weight, if not empty
    GgmlType embd_type = GgmlType::F32;        // token_embd's type (the rest are F32)
};

inline std::string temp_model_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            ("edgeq-engine-test-" + std::to_string(::getpid()) + "-" + name + ".gguf"))
        .string();
}

inline std::string write_model(const Synth& m, Random& random, const std::string& name) {
    const std::string path = temp_model_path(name);
    GgufWriter w(path);
    const std::string a = m.arch;
    w.set("general.architecture", GgufValue::make_string(a));
    w.set(a + ".block_count", GgufValue::make_uint32(static_cast<uint32_t>(m.n_layer)));
    w.set(a + ".embedding_length", GgufValue::make_uint32(static_cast<uint32_t>(m.n_embd)));
    w.set(a + ".feed_forward_length", GgufValue::make_uint32(static_cast<uint32_t>(m.n_ff)));
    w.set(a + ".context_length", GgufValue::make_uint32(static_cast<uint32_t>(m.n_ctx_train)));
    w.set(a + ".attention.head_count", GgufValue::make_uint32(static_cast<uint32_t>(m.n_head)));
    w.set(a + ".attention.head_count_kv",
          GgufValue::make_uint32(static_cast<uint32_t>(m.n_head_kv)));
    w.set(a + ".attention.key_length", GgufValue::make_uint32(static_cast<uint32_t>(m.head_dim)));
    w.set(a + ".attention.value_length", GgufValue::make_uint32(static_cast<uint32_t>(m.head_dim)));
    w.set(a + ".rope.freq_base", GgufValue::make_float32(10000.0f));
    w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::make_float32(1e-6f));
    if (m.sliding_window > 0) {
        w.set(a + ".attention.sliding_window",
              GgufValue::make_uint32(static_cast<uint32_t>(m.sliding_window)));
    }
    for (const auto& [key, value] : m.extra) w.set(key, value);
    if (m.all_local) {
        std::vector<uint8_t> flags(static_cast<size_t>(m.n_layer), 1);
        w.set(a + ".attention.sliding_window_pattern",
              GgufValue::make_array(GgufType::boolean, flags));
    }

    struct Tensor {
        std::string name;
        std::vector<int64_t> shape;
        float center, sigma;
        std::vector<float> values;  // fixed values instead of random ones
        GgmlType type = GgmlType::F32;
        Tensor(std::string n, std::vector<int64_t> s, float c, float sd, std::vector<float> v = {})
            : name(std::move(n)), shape(std::move(s)), center(c), sigma(sd), values(std::move(v)) {}
    };
    std::vector<Tensor> tensors;
    const int64_t n_half = m.head_dim / 2;
    if (!m.rope_short.empty())
        tensors.push_back({"rope_factors_short.weight", {n_half}, 0, 0, m.rope_short});
    if (!m.rope_long.empty())
        tensors.push_back({"rope_factors_long.weight", {n_half}, 0, 0, m.rope_long});
    const int64_t q = int64_t{m.n_head} * m.head_dim, kv = int64_t{m.n_head_kv} * m.head_dim;
    tensors.push_back({"token_embd.weight", {m.n_embd, m.n_vocab}, 0, 1});
    tensors.back().type = m.embd_type;
    tensors.push_back({"output_norm.weight", {m.n_embd}, 1, 0.1f});
    if (!m.tied) tensors.push_back({"output.weight", {m.n_embd, m.n_vocab}, 0, 0.3f});
    for (int il = 0; il < m.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        tensors.push_back({p + "attn_norm.weight", {m.n_embd}, 1, 0.1f});
        if (m.fused) {
            tensors.push_back({p + "attn_qkv.weight", {m.n_embd, q + 2 * kv}, 0, 0.3f});
        } else {
            tensors.push_back({p + "attn_q.weight", {m.n_embd, q}, 0, 0.3f});
            tensors.push_back({p + "attn_k.weight", {m.n_embd, kv}, 0, 0.3f});
            tensors.push_back({p + "attn_v.weight", {m.n_embd, kv}, 0, 0.3f});
        }
        if (m.qk_norm) {
            tensors.push_back({p + "attn_q_norm.weight", {m.head_dim}, 1, 0.1f});
            tensors.push_back({p + "attn_k_norm.weight", {m.head_dim}, 1, 0.1f});
        }
        tensors.push_back({p + "attn_output.weight", {q, m.n_embd}, 0, 0.2f});
        tensors.push_back({p + "ffn_norm.weight", {m.n_embd}, 1, 0.1f});
        if (m.fused) {
            tensors.push_back({p + "ffn_up.weight", {m.n_embd, 2 * m.n_ff}, 0, 0.3f});
        } else {
            tensors.push_back({p + "ffn_gate.weight", {m.n_embd, m.n_ff}, 0, 0.3f});
            tensors.push_back({p + "ffn_up.weight", {m.n_embd, m.n_ff}, 0, 0.3f});
        }
        tensors.push_back({p + "ffn_down.weight", {m.n_ff, m.n_embd}, 0, 0.2f});
        if (m.post_norms) {
            tensors.push_back({p + "post_attention_norm.weight", {m.n_embd}, 1, 0.1f});
            tensors.push_back({p + "post_ffw_norm.weight", {m.n_embd}, 1, 0.1f});
        }
    }
    std::erase_if(tensors, [&](const Tensor& t) {
        return std::find(m.skip.begin(), m.skip.end(), t.name) != m.skip.end();
    });
    for (const Tensor& t : tensors) w.add_tensor(t.name, t.type, t.shape);
    w.write_header();
    for (const Tensor& t : tensors) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        std::vector<float> v = random.normal(static_cast<size_t>(n), t.sigma);
        for (float& x : v) x += t.center;
        if (!t.values.empty()) v = t.values;
        if (t.type == GgmlType::F32) {
            w.write({reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)});
        } else {
            std::vector<uint8_t> q(row_size(t.type, n));
            dtype(t.type).from_float_ref(v.data(), q.data(), n);
            w.write(q);
        }
    }
    w.finish();
    return path;
}

struct TempModel {
    TempModel(const Synth& m, Random& random, const std::string& name)
        : path(write_model(m, random, name)) {}
    ~TempModel() { std::filesystem::remove(path); }
    std::string path;
};

inline std::vector<int32_t> random_ids(Random& random, int n, int n_vocab) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = random.uniform_int(0, n_vocab - 1);
    return ids;
}

}  // namespace edgeq::testing
