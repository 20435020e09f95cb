// A developer's driver for the decoder engine: loads a GGUF model, decodes the given token ids
// and writes the logits of every position as a float32 .npy array (n_tokens x n_vocab), for
// tests/integration/test_engine.py to compare with transformers' logits. Not part of the edgeq
// command line.
//
//   edgeq-logits MODEL.gguf --ids 1,15043,3186 -o logits.npy [--split batch|steps|N]
//                [--n-batch 512] [--kv f16|q8_0|f32] [-t THREADS] [--hidden mean.npy]
//   edgeq-logits MODEL.gguf --ids 2,106 --generate 16     # greedy ids, one per line
//
// --split batch: one decode() of all ids; steps: one decode() per id (each through the KV
// cache); N: the first N ids in one decode(), then one per id. Errors go to stderr, exit 1.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/runtime/engine.h"

namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < text.size()) {
        size_t end = text.find(',', i);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(i, end - i);
        try {
            size_t used = 0;
            ids.push_back(static_cast<int32_t>(std::stol(item, &used)));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::exception&) {
            edgeq::fail("--ids: '{}' is not an integer", item);
        }
        i = end + 1;
    }
    if (ids.empty()) edgeq::fail("--ids: no token ids");
    return ids;
}

// A C-order float32 .npy file (format version 1.0).
void write_npy(const std::string& path, const std::vector<float>& data, size_t rows, size_t cols) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                         std::to_string(rows) + ", " + std::to_string(cols) + "), }";
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    std::ofstream out(path, std::ios::binary);
    if (!out) edgeq::fail("cannot write {}", path);
    const uint16_t header_len = static_cast<uint16_t>(header.size());
    out.write("\x93NUMPY\x01\x00", 8);
    out.write(reinterpret_cast<const char*>(&header_len), 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size() * sizeof(float)));
    if (!out) edgeq::fail("cannot write {}", path);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Decode token ids with edgeq's engine and write every position's logits",
                 "edgeq-logits"};
    std::string model_path, ids_text, out_path, hidden_path, split = "batch", kv = "f16";
    int32_t n_batch = 512, n_threads = 1, n_ctx = 0, generate = 0;
    app.add_option("model", model_path, "GGUF model")->required();
    app.add_option("--ids", ids_text, "comma-separated token ids")->required();
    app.add_option("-o,--out", out_path, "logits output (.npy, n_tokens x n_vocab float32)");
    app.add_option("--split", split, "batch, steps, or N (N ids at once, then one by one)");
    app.add_option("--n-batch", n_batch, "tokens per forward step");
    app.add_option("--kv", kv, "KV cache type: f16, q8_0 or f32");
    app.add_option("-t,--threads", n_threads, "threads");
    app.add_option("-c,--ctx", n_ctx, "context length (0: the ids' count plus --generate)");
    app.add_option("--hidden", hidden_path, "mean final hidden state output (.npy, 1 x n_embd)");
    app.add_option("--generate", generate, "greedy tokens to generate after the ids");
    CLI11_PARSE(app, argc, argv);

    try {
        const std::vector<int32_t> ids = parse_ids(ids_text);
        const int32_t n = static_cast<int32_t>(ids.size());
        int32_t n_first = n;
        if (split == "steps") {
            n_first = 1;
        } else if (split != "batch") {
            try {
                n_first = std::stoi(split);
            } catch (const std::exception&) {
                edgeq::fail("--split: '{}' is not batch, steps or a count", split);
            }
            if (n_first < 1 || n_first > n) edgeq::fail("--split: {} is outside 1..{}", n_first, n);
        }
        if (kv != "f16" && kv != "q8_0" && kv != "f32")
            edgeq::fail("--kv: '{}' is not f16, q8_0 or f32", kv);

        const auto model = edgeq::LoadedModel::load(model_path);
        edgeq::SessionOptions options;
        options.n_ctx = n_ctx > 0 ? n_ctx : n + generate;
        options.n_threads = n_threads;
        options.n_batch = n_batch;
        options.kv_q8_0 = kv == "q8_0";
        options.kv_f32 = kv == "f32";
        options.all_logits = true;
        edgeq::Session session(*model, options);

        const size_t n_vocab = static_cast<size_t>(model->n_vocab());
        std::vector<float> logits;
        logits.reserve(static_cast<size_t>(n) * n_vocab);
        const auto keep = [&](int32_t count) {
            for (int32_t i = 0; i < count; ++i) {
                const float* row = session.logits_at(i);
                logits.insert(logits.end(), row, row + n_vocab);
            }
        };
        const float* last = session.decode({ids.data(), static_cast<size_t>(n_first)});
        keep(n_first);
        for (int32_t i = n_first; i < n; ++i) {
            last = session.decode({&ids[static_cast<size_t>(i)], 1});
            keep(1);
        }
        if (!out_path.empty()) write_npy(out_path, logits, static_cast<size_t>(n), n_vocab);
        if (!hidden_path.empty()) {
            const std::vector<float> mean = session.mean_hidden();
            write_npy(hidden_path, mean, 1, mean.size());
        }
        for (int32_t step = 0; step < generate; ++step) {
            const int32_t next =
                static_cast<int32_t>(std::max_element(last, last + n_vocab) - last);
            std::printf("%d\n", next);
            if (step + 1 < generate) last = session.decode({&next, 1});
        }
    } catch (const edgeq::Error& e) {
        std::fprintf(stderr, "edgeq-logits: %s\n", e.what());
        return 1;
    }
    return 0;
}
