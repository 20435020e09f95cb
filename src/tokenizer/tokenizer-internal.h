// The state behind edgeq::Tokenizer, shared by the per-model encoders (spm.cpp, bpe.cpp,
// wordpiece.cpp) and tokenizer.cpp (metadata, special tokens, decoding).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edgeq/tokenizer/tokenizer.h"
#include "pre-tokenizer.h"

namespace edgeq {

// tokenizer.ggml.token_type values.
enum TokenType : int32_t {
    k_type_undefined = 0,
    k_type_normal = 1,
    k_type_unknown = 2,
    k_type_control = 3,
    k_type_user_defined = 4,
    k_type_unused = 5,
    k_type_byte = 6,
};

enum class VocabKind { spm, bpe, wordpiece };

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Tokenizer::Impl {
    VocabKind kind = VocabKind::spm;
    std::string model_name;  // tokenizer.ggml.model
    std::string pre_name;    // tokenizer.ggml.pre

    std::vector<std::string> texts;
    std::vector<float> scores;
    std::vector<int32_t> types;
    std::vector<uint8_t> lstrip, rstrip;  // strip spaces beside a special token's text
    TokenMap ids;                         // text -> id; the last id wins for duplicate texts
    size_t max_token_bytes = 0;

    // BPE: merge rank by pair, keyed by pair_key(left, right).
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> merge_ranks;
    const PreTokenizer* pre = nullptr;
    bool byte_level = true;  // BPE symbols are GPT-2's byte-to-unicode characters

    // SPM byte fallback: the id of <0xXX>, or -1.
    std::array<int32_t, 256> byte_ids{};

    int32_t bos = -1, eos = -1, unk = -1, sep = -1, eot = -1;
    bool add_bos = false, add_eos = false, add_sep = false;
    bool add_space_prefix = false;
    bool lowercase = true, strip_accents = true;  // WordPiece normalizer

    std::vector<int32_t> specials;  // control / user-defined / unknown, longest text first
    std::vector<uint8_t> end_of_generation;
    std::vector<std::string> pieces;  // piece(id, false) for every token

    int32_t find(std::string_view text) const {
        const auto it = ids.find(text);
        return it == ids.end() ? -1 : it->second;
    }

    static std::string pair_key(std::string_view left, std::string_view right) {
        std::string key;
        key.reserve(left.size() + right.size() + 4);
        const auto n = static_cast<uint32_t>(left.size());
        key.append(reinterpret_cast<const char*>(&n), sizeof(n));
        key.append(left);
        key.append(right);
        return key;
    }

    void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
    void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
    void encode_wordpiece(std::string_view text, std::vector<int32_t>& out) const;
    std::string make_piece(int32_t id) const;
};

// GPT-2's map from bytes to printable code points, and back (-1 if not an image).
const std::array<uint32_t, 256>& byte_to_codepoint();
int byte_of_codepoint(uint32_t cp);

}  // namespace edgeq
