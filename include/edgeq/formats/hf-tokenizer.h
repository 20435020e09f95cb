// The tokenizer of a Hugging Face checkpoint as GGUF metadata: exactly the tokenizer.* keys
// that llama.cpp's converter (convert_hf_to_gguf.py) writes, in its order and with its value
// types, for Llama (2, 3.x, TinyLlama, SmolLM, CodeLlama), Mistral, Qwen2, Qwen3, Gemma 2,
// Gemma 3 and Phi-3.
//
//   HfTokenizerInput input{"Qwen3-0.6B", config_json, "qwen3", 151936};
//   GgufMetadata keys = hf_tokenizer_metadata(input);
//   // tokenizer.ggml.model "gpt2", tokenizer.ggml.pre "qwen2", tokenizer.ggml.tokens,
//   // tokenizer.ggml.token_type, tokenizer.ggml.merges, the special token ids, the add_*
//   // flags, tokenizer.chat_template
//
// Two vocabularies, chosen per family as the converter chooses them:
//   - SentencePiece (tokenizer.model; model "llama", pre "default"): tokens, FLOAT32 scores
//     and INT32 token types, padded to the config's vocab_size with "[PAD<id>]"; pieces of
//     tokenizer_config.json "added_tokens_decoder" and added_tokens.json override theirs.
//   - byte-level BPE (tokenizer.json; model "gpt2"): tokens and INT32 token types, then the
//     merges. tokenizer.ggml.pre names the pre-tokenizer, recognised from tokenizer.json's
//     structure (the converter hashes a test string's token ids instead): "llama-bpe" (Llama 3),
//     "qwen2", "deepseek-r1-qwen", "smollm", "starcoder", "gpt-2", "tekken" (Mistral-Nemo).
// Then the special token ids (UINT32; tokenizer_config.json's *_token looked up in
// tokenizer.json's added_tokens, then config.json's *_token_id), the add_bos/eos/sep flags
// (BOOL; tokenizer.json's post-processor, then tokenizer_config.json), the chat template
// (tokenizer_config.json, chat_template.jinja with additional_chat_templates/, or
// chat_template.json) and the normalizer flags.
//
// Every file is untrusted: a missing or malformed file or field is an Error naming the file
// and field, ids are bounds-checked, and a pre-tokenizer that is not recognised is an Error
// listing the ones that are. Where the converter would crash on a malformed file, this is an
// Error too; where it would index a Python list with a negative id, this is an Error.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "edgeq/formats/gguf-value.h"

namespace edgeq {

struct HfTokenizerInput {
    std::string dir;           // checkpoint directory
    nlohmann::json config;     // config.json as parsed (null if there is none)
    std::string architecture;  // GGUF architecture: llama, qwen2, qwen3, gemma2, gemma3, phi3
    int64_t vocab_size = 0;    // config vocab_size after the family's default; 0 if unknown
};

// The tokenizer files of a checkpoint directory, read whole; nullopt where a file is absent.
struct HfTokenizerFiles {
    std::optional<std::string> tokenizer_json;         // tokenizer.json
    std::optional<std::string> tokenizer_config_json;  // tokenizer_config.json
    std::optional<std::string> tokenizer_model;        // tokenizer.model (SentencePiece)
    std::optional<std::string> added_tokens_json;      // added_tokens.json
    std::optional<std::string> merges_txt;             // merges.txt
    std::optional<std::string> chat_template_jinja;    // chat_template.jinja
    std::optional<std::string> chat_template_json;     // chat_template.json
    // additional_chat_templates/*.jinja as (file stem, text), in directory order (the
    // converter's order); read only where chat_template.jinja exists.
    std::vector<std::pair<std::string, std::string>> additional_chat_templates;
    bool has_tekken_json = false;  // tekken.json (Mistral's own format; not read)

    // Reads those of the files above that `dir` holds; an unreadable file is an Error.
    static HfTokenizerFiles read(const std::string& dir);
};

// The tokenizer.* keys llama.cpp's converter writes for this checkpoint, in its order, with
// its value types. Throws an Error naming the file and field for missing or malformed
// tokenizer files, and for a BPE pre-tokenizer it cannot identify (listing those it knows).
GgufMetadata hf_tokenizer_metadata(const HfTokenizerInput& input);
// The same from files already read; `input.dir` only names them in messages.
GgufMetadata hf_tokenizer_metadata(const HfTokenizerInput& input, const HfTokenizerFiles& files);

// One piece of a SentencePiece model, as the file holds it.
struct SentencePiecePiece {
    std::string piece;  // UTF-8, "▁" (U+2581) for a space
    float score;
    int32_t type;  // NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
};

// The pieces of a SentencePiece model file (tokenizer.model, a ModelProto), checked as
// SentencePiece checks a model it loads: at least the unknown piece, no empty or duplicate
// piece, valid UTF-8, BYTE pieces "<0xXX>" only with byte_fallback (and then all 256 of
// them). `name` labels errors.
std::vector<SentencePiecePiece> read_sentencepiece_model(std::span<const uint8_t> bytes,
                                                         const std::string& name);

}  // namespace edgeq
