// A developer's driver for the Hugging Face tokenizer import: prints the tokenizer.* metadata
// edgeq makes for a checkpoint directory as JSON, for bench/tokenizer_vs_llamacpp.py to
// compare with llama.cpp's converter. Not part of the edgeq command line.
//
//   edgeq-tokenizer-meta DIR --arch llama [--vocab-size 32000]
//   edgeq-tokenizer-meta --sentencepiece tokenizer.model      # the pieces as the file holds them
//
// Output: {"keys": [{"key": K, "type": T, "value": V}, ...]} in metadata order; an array has
// "type": "ARRAY" and "element_type"; FLOAT32 values are given as their IEEE-754 bit patterns
// (uint32) so that comparisons are exact. Errors go to stderr, with exit status 1.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "edgeq/core/error.h"
#include "edgeq/core/mapped-file.h"
#include "edgeq/formats/gguf-value.h"
#include "edgeq/formats/hf-tokenizer.h"

namespace {

using nlohmann::json;

uint32_t float_bits(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

json scalar(const edgeq::GgufValue& value) {
    switch (value.type()) {
        case edgeq::GgufType::string:
            return value.to_string();
        case edgeq::GgufType::boolean:
            return value.to_bool();
        case edgeq::GgufType::float32:
            return float_bits(static_cast<float>(value.to_double()));
        case edgeq::GgufType::float64:
            return value.to_double();
        case edgeq::GgufType::int8:
        case edgeq::GgufType::int16:
        case edgeq::GgufType::int32:
        case edgeq::GgufType::int64:
            return value.to_int();
        default:
            return value.to_uint();
    }
}

json describe(const edgeq::GgufValue& value) {
    json out;
    out["type"] = edgeq::gguf_type_name(value.type());
    if (value.type() != edgeq::GgufType::array) {
        out["value"] = scalar(value);
        return out;
    }
    out["element_type"] = edgeq::gguf_type_name(value.element_type());
    json items = json::array();
    if (value.element_type() == edgeq::GgufType::string) {
        for (uint64_t i = 0; i < value.array_size(); ++i) items.push_back(value.string_at(i));
    } else if (value.element_type() == edgeq::GgufType::float32) {
        const auto bytes = value.element_bytes();
        for (uint64_t i = 0; i < value.array_size(); ++i) {
            uint32_t bits;
            std::memcpy(&bits, bytes.data() + 4 * i, 4);
            items.push_back(bits);
        }
    } else {
        for (uint64_t i = 0; i < value.array_size(); ++i)
            items.push_back(scalar(value.element_at(i)));
    }
    out["value"] = std::move(items);
    return out;
}

json read_config(const std::string& dir) {
    const std::filesystem::path path = std::filesystem::path(dir) / "config.json";
    if (!std::filesystem::is_regular_file(path)) return nullptr;
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        edgeq::fail("{}: not valid JSON: {}", path.string(), e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Prints the tokenizer.* GGUF metadata edgeq makes for a Hugging Face checkpoint"};
    std::string dir;
    std::string architecture = "llama";
    int64_t vocab_size = 0;
    std::string sentencepiece;
    bool timing = false;
    app.add_option("dir", dir, "Checkpoint directory");
    app.add_option("--arch", architecture,
                   "GGUF architecture: llama, qwen2, qwen3, gemma2, gemma3, phi3");
    app.add_option("--vocab-size", vocab_size,
                   "config vocab_size after the family's default (0: unknown)");
    app.add_option("--sentencepiece", sentencepiece,
                   "Print the pieces of this tokenizer.model instead");
    app.add_flag("--time", timing, "Print the import's wall time on stderr");
    CLI11_PARSE(app, argc, argv);

    try {
        json out;
        const auto start = std::chrono::steady_clock::now();
        if (!sentencepiece.empty()) {
            const edgeq::MappedFile file(sentencepiece);
            json pieces = json::array();
            for (const edgeq::SentencePiecePiece& p :
                 edgeq::read_sentencepiece_model(file.bytes(), sentencepiece)) {
                pieces.push_back(
                    {{"piece", p.piece}, {"score", float_bits(p.score)}, {"type", p.type}});
            }
            out["pieces"] = std::move(pieces);
        } else {
            if (dir.empty()) throw CLI::RequiredError("dir");
            const edgeq::HfTokenizerInput input{dir, read_config(dir), architecture, vocab_size};
            const edgeq::GgufMetadata metadata = edgeq::hf_tokenizer_metadata(input);
            if (timing) {
                const std::chrono::duration<double, std::milli> ms =
                    std::chrono::steady_clock::now() - start;
                std::fprintf(stderr, "time_ms %.1f\n", ms.count());
            }
            json keys = json::array();
            for (const auto& [key, value] : metadata) {
                json entry = describe(value);
                entry["key"] = key;
                keys.push_back(std::move(entry));
            }
            out["keys"] = std::move(keys);
        }
        std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    } catch (const edgeq::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const CLI::Error& e) {
        return app.exit(e);
    }
    return 0;
}
