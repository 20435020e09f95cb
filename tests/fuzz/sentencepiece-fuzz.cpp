// Fuzzes the SentencePiece model reader (tokenizer.model): any input either parses or is
// refused with an edgeq::Error. A parsed model then goes through the whole SentencePiece
// import (the converter's vocabulary, padding, the special vocabulary) for a Llama and a
// Phi-3 checkpoint, whose keys must be consistent. Seeds are in
// tests/fuzz/corpus/sentencepiece/ (generate.py writes them).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "edgeq/core/error.h"
#include "edgeq/formats/hf-tokenizer.h"

namespace {

// The array lengths of tokens, scores and token_type agree, and match the pieces read.
void check_keys(const edgeq::GgufMetadata& keys, size_t n_expected) {
    size_t n_arrays = 0;
    for (const auto& [key, value] : keys) {
        if (key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.scores" ||
            key == "tokenizer.ggml.token_type") {
            if (value.array_size() != n_expected) std::abort();
            ++n_arrays;
        }
    }
    if (n_arrays != 3) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    size_t n_pieces = 0;
    try {
        const auto pieces = edgeq::read_sentencepiece_model({data, size}, "fuzz.model");
        n_pieces = pieces.size();
        for (const edgeq::SentencePiecePiece& p : pieces) {
            if (p.piece.empty() || p.type < 1 || p.type > 6) std::abort();
        }
    } catch (const edgeq::Error&) {
        return 0;
    }
    edgeq::HfTokenizerFiles files;
    files.tokenizer_model = std::string(reinterpret_cast<const char*>(data), size);
    const int64_t vocab_size = static_cast<int64_t>(n_pieces) + static_cast<int64_t>(size % 3) - 1;
    for (const char* arch : {"llama", "phi3"}) {
        try {
            const edgeq::HfTokenizerInput input{"fuzz", nullptr, arch, vocab_size};
            check_keys(edgeq::hf_tokenizer_metadata(input, files),
                       vocab_size > 0 ? static_cast<size_t>(vocab_size) : n_pieces);
        } catch (const edgeq::Error&) {
            // Phi-3 refuses more pieces than vocab_size
        }
    }
    return 0;
}
