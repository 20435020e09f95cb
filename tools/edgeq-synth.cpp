// edgeq-synth: writes Llama-shaped models with random weights, of any size, for tests and
// benchmarks of speed and memory (never of quality). The default preset is TinyLlama 1.1B.
//
//   edgeq-synth -o tinyllama-f16.gguf --vocab-from ggml-vocab-llama-spm.gguf
//   edgeq-synth --preset tiny --dist heavy --type f32 -o tiny.gguf
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/core/half.h"
#include "edgeq/core/progress.h"
#include "edgeq/core/temp-files.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/gguf-writer.h"
#include "edgeq/formats/gguf.h"

namespace {

using namespace edgeq;

struct Shape {
    int64_t n_vocab = 32000;
    int64_t n_embd = 2048;
    int64_t n_ff = 5632;
    int64_t n_layer = 22;
    int64_t n_head = 32;
    int64_t n_head_kv = 4;
    int64_t n_ctx = 2048;
};

struct Args {
    std::string output;
    std::string preset = "tinyllama-1.1b";
    std::string type = "f16";
    std::string dist = "normal";
    std::string vocab_from;
    uint64_t seed = 42;
    int threads = 0;
    Shape shape;
};

// splitmix64: a fast, well-mixed generator; one stream per chunk keeps output deterministic
// whatever the thread count.
struct SplitMix {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() {
        return static_cast<float>((next() >> 40) + 1) * (1.0f / 16777217.0f);
    }  // (0, 1)
    float normal() {
        const float u1 = uniform();
        const float u2 = uniform();
        return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
    }
    // Student-t with 3 degrees of freedom: normal / sqrt(chi2_3 / 3).
    float student3() {
        const float z = normal();
        const float a = normal(), b = normal(), c = normal();
        return z / std::sqrt((a * a + b * b + c * c) / 3.0f + 1e-12f);
    }
};

struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;
    bool is_norm;
};

std::vector<TensorSpec> llama_tensors(const Shape& s) {
    const int64_t head_dim = s.n_embd / s.n_head;
    const int64_t n_embd_kv = head_dim * s.n_head_kv;
    std::vector<TensorSpec> t;
    t.push_back({"token_embd.weight", {s.n_embd, s.n_vocab}, false});
    for (int64_t i = 0; i < s.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        t.push_back({p + "attn_norm.weight", {s.n_embd}, true});
        t.push_back({p + "attn_q.weight", {s.n_embd, s.n_embd}, false});
        t.push_back({p + "attn_k.weight", {s.n_embd, n_embd_kv}, false});
        t.push_back({p + "attn_v.weight", {s.n_embd, n_embd_kv}, false});
        t.push_back({p + "attn_output.weight", {s.n_embd, s.n_embd}, false});
        t.push_back({p + "ffn_norm.weight", {s.n_embd}, true});
        t.push_back({p + "ffn_gate.weight", {s.n_embd, s.n_ff}, false});
        t.push_back({p + "ffn_up.weight", {s.n_embd, s.n_ff}, false});
        t.push_back({p + "ffn_down.weight", {s.n_ff, s.n_embd}, false});
    }
    t.push_back({"output_norm.weight", {s.n_embd}, true});
    t.push_back({"output.weight", {s.n_embd, s.n_vocab}, false});
    return t;
}

void run(const Args& args) {
    Shape s = args.shape;
    if (args.preset == "tiny") {
        s = Shape{512, 256, 704, 4, 8, 2, 512};
    } else if (args.preset != "tinyllama-1.1b" && args.preset != "custom") {
        fail("unknown preset '{}' (expected tinyllama-1.1b, tiny or custom)", args.preset);
    }
    GgmlType type;
    if (args.type == "f16") {
        type = GgmlType::F16;
    } else if (args.type == "f32") {
        type = GgmlType::F32;
    } else if (args.type == "bf16") {
        type = GgmlType::BF16;
    } else {
        fail("--type {}: expected f16, bf16 or f32", args.type);
    }
    const bool heavy = args.dist == "heavy";
    if (!heavy && args.dist != "normal") fail("--dist {}: expected normal or heavy", args.dist);

    std::optional<GgufFile> vocab;
    if (!args.vocab_from.empty()) {
        vocab = GgufFile::open(args.vocab_from);
        const GgufValue& tokens = vocab->get("tokenizer.ggml.tokens");
        s.n_vocab = static_cast<int64_t>(tokens.array_size());
    }
    if (s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0)
        fail("heads must divide the embedding and each other");

    GgufWriter out(args.output);
    out.set("general.architecture", GgufValue::make_string("llama"));
    out.set("general.name", GgufValue::make_string("edgeq synthetic " + args.preset));
    out.set("llama.context_length", GgufValue::make_uint32(static_cast<uint32_t>(s.n_ctx)));
    out.set("llama.embedding_length", GgufValue::make_uint32(static_cast<uint32_t>(s.n_embd)));
    out.set("llama.block_count", GgufValue::make_uint32(static_cast<uint32_t>(s.n_layer)));
    out.set("llama.feed_forward_length", GgufValue::make_uint32(static_cast<uint32_t>(s.n_ff)));
    out.set("llama.rope.dimension_count",
            GgufValue::make_uint32(static_cast<uint32_t>(s.n_embd / s.n_head)));
    out.set("llama.attention.head_count", GgufValue::make_uint32(static_cast<uint32_t>(s.n_head)));
    out.set("llama.attention.head_count_kv",
            GgufValue::make_uint32(static_cast<uint32_t>(s.n_head_kv)));
    out.set("llama.attention.layer_norm_rms_epsilon", GgufValue::make_float32(1e-5f));
    out.set("llama.rope.freq_base", GgufValue::make_float32(10000.0f));
    out.set("llama.vocab_size", GgufValue::make_uint32(static_cast<uint32_t>(s.n_vocab)));
    out.set("general.file_type", GgufValue::make_uint32(type == GgmlType::F32   ? 0
                                                        : type == GgmlType::F16 ? 1
                                                                                : 32));
    if (vocab) {
        for (const auto& [key, value] : vocab->metadata()) {
            if (key.rfind("tokenizer.", 0) == 0) out.set(key, value);
        }
    }
    const std::vector<TensorSpec> specs = llama_tensors(s);
    uint64_t total = 0;
    for (const TensorSpec& t : specs) {
        out.add_tensor(t.name, t.is_norm ? GgmlType::F32 : type, t.shape);
        total += out.tensors().back().n_bytes;
    }
    out.write_header();

    ThreadPool pool(args.threads);
    Progress progress("synth", total);
    const int64_t chunk = 1 << 20;
    std::vector<float> values(static_cast<size_t>(chunk));
    std::vector<uint8_t> bytes(static_cast<size_t>(chunk) * 4);
    for (size_t ti = 0; ti < specs.size(); ++ti) {
        const TensorSpec& t = specs[ti];
        const GgmlType tt = t.is_norm ? GgmlType::F32 : type;
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        const int64_t n_cols = t.shape[0];
        // Heavy-tailed weights get a few input columns with larger scale, as trained weights do.
        std::vector<float> column_scale(static_cast<size_t>(n_cols), 1.0f);
        if (heavy && !t.is_norm) {
            SplitMix rng{args.seed * 7919 + ti};
            for (auto& c : column_scale)
                c = rng.uniform() < 1.0f / 64 ? 4.0f + 8.0f * rng.uniform() : 1.0f;
        }
        const float sigma = t.is_norm ? 0.1f : 0.02f;
        for (int64_t begin = 0; begin < n; begin += chunk) {
            const int64_t count = std::min(chunk, n - begin);
            pool.parallel_for(count, 1 << 16, [&](int64_t b, int64_t e, int) {
                SplitMix rng{args.seed ^ (static_cast<uint64_t>(ti) << 40) ^
                             static_cast<uint64_t>(begin + b)};
                for (int64_t i = b; i < e; ++i) {
                    const float r = heavy && !t.is_norm ? 0.6f * rng.student3() : rng.normal();
                    const float v =
                        sigma * r * column_scale[static_cast<size_t>((begin + i) % n_cols)];
                    values[static_cast<size_t>(i)] = t.is_norm ? 1.0f + v : v;
                }
                if (tt == GgmlType::F16) {
                    fp32_to_fp16_row(values.data() + b,
                                     reinterpret_cast<uint16_t*>(bytes.data()) + b, e - b);
                } else if (tt == GgmlType::BF16) {
                    fp32_to_bf16_row(values.data() + b,
                                     reinterpret_cast<uint16_t*>(bytes.data()) + b, e - b);
                } else {
                    std::memcpy(bytes.data() + b * 4, values.data() + b,
                                static_cast<size_t>(e - b) * 4);
                }
            });
            const size_t n_bytes = static_cast<size_t>(count) * (tt == GgmlType::F32 ? 4 : 2);
            out.write(std::span<const uint8_t>(bytes.data(), n_bytes));
            progress.advance(n_bytes);
        }
    }
    progress.finish();
    out.finish();
    int64_t n_params = 0;
    for (const TensorSpec& t : specs) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        n_params += n;
    }
    std::printf("wrote %s: %.3f B parameters, %.1f MiB\n", args.output.c_str(), n_params / 1e9,
                out.bytes_written() / 1048576.0);
}

}  // namespace

int main(int argc, char** argv) {
    Args args;
    CLI::App app{"Write a Llama-shaped GGUF model with random weights", "edgeq-synth"};
    app.add_option("-o,--output", args.output, "Output GGUF file")->required();
    app.add_option("--preset", args.preset,
                   "tinyllama-1.1b (default), tiny, or custom (with the shape flags)");
    app.add_option("--type", args.type, "f16 (default), bf16 or f32");
    app.add_option("--dist", args.dist,
                   "normal (default) or heavy (Student-t with outlier columns)");
    app.add_option("--vocab-from", args.vocab_from,
                   "Copy the tokenizer of this GGUF (its vocabulary size wins)");
    app.add_option("--seed", args.seed, "Random seed");
    app.add_option("-t,--threads", args.threads, "Threads");
    app.add_option("--vocab", args.shape.n_vocab, "Vocabulary size (custom)");
    app.add_option("--embd", args.shape.n_embd, "Embedding length (custom)");
    app.add_option("--ffn", args.shape.n_ff, "Feed-forward length (custom)");
    app.add_option("--layers", args.shape.n_layer, "Layers (custom)");
    app.add_option("--heads", args.shape.n_head, "Attention heads (custom)");
    app.add_option("--heads-kv", args.shape.n_head_kv, "Key/value heads (custom)");
    app.add_option("--ctx", args.shape.n_ctx, "Context length (custom)");
    CLI11_PARSE(app, argc, argv);
    edgeq::install_temp_file_cleanup();
    try {
        run(args);
    } catch (const edgeq::Error& e) {
        std::fprintf(stderr, "edgeq-synth: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
