// Shared parts of the Hugging Face tokenizer import (hf-tokenizer*.cpp): JSON read with
// Python's semantics (the converter's truthiness, equality and int()), the ordered key list
// gguf-py writes, the parsed files, and the three stages (vocabulary, special vocabulary,
// pre-tokenizer name).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "edgeq/formats/gguf-value.h"
#include "edgeq/formats/hf-tokenizer.h"

namespace edgeq::hf_tokenizer {

using json = nlohmann::json;

// GGUF token types (llama.cpp's llama_token_type / gguf-py's TokenType).
enum TokenType : int32_t {
    k_normal = 1,
    k_unknown = 2,
    k_control = 3,
    k_user_defined = 4,
    k_unused = 5,
    k_byte = 6,
};

// No real vocabulary comes near this; a config asking for more is refused rather than padded.
constexpr int64_t k_max_vocab = int64_t{1} << 24;

// ---- JSON with Python's semantics (hf-tokenizer-json.cpp) ----

// bool(value): null, false, 0, "", [] and {} are false.
bool truthy(const json& value);
// value == other as Python compares the decoded values (true == 1 == 1.0).
bool py_equal(const json& a, const json& b);
// object.get(key): nullptr when absent. `object` must be a JSON object: anything else is an
// Error naming `where` (the converter would raise AttributeError).
const json* get(const json& object, std::string_view key, std::string_view where);
// The value of a JSON int (or bool, which Python counts as an int), if it is one.
std::optional<int64_t> as_int(const json& value);
// Python's int(text) for ASCII digits (whitespace, sign, '_' between digits); nullopt if the
// text is not one or does not fit int64.
std::optional<int64_t> python_int(std::string_view text);
// Parses `text`; a syntax error, a byte-order mark (Python's json refuses one) or nesting
// deeper than Python's recursion limit allows is an Error naming `path` and the offset.
json parse_json(std::string_view text, const std::string& path);
// The keys of the object text[member] (or of the top-level object when `member` is empty)
// in file order, each once (nlohmann's objects are sorted; Python's dicts keep file order).
std::vector<std::string> key_order(std::string_view text, std::string_view member);
// A type name for messages: "a string", "an array", ...
std::string describe(const json& value);

// ---- text ----

bool valid_utf8(std::string_view text);
// Python's universal newlines on read: "\r\n" and "\r" become "\n".
std::string universal_newlines(std::string_view text);
// Whitespace as Python's str.split() and str.strip() see it, on UTF-8 text.
std::vector<std::string> python_split(std::string_view text);
std::string python_strip(std::string_view text);
std::string replace_all(std::string_view text, std::string_view from, std::string_view to);
// The converter's does_token_look_special().
bool looks_special(std::string_view token);
// Control characters escaped, long text cut, for messages.
std::string shown(std::string_view text);

// ---- the key list ----

// Keys in insertion order; setting a key again replaces its value where it stands (gguf-py
// keeps its KV data in a dict). Empty strings and arrays are not written (gguf-py's add_string
// and add_array skip them).
class KeyList {
  public:
    void set(const std::string& key, GgufValue value);
    void set_string(const std::string& key, std::string value);
    void set_bool(const std::string& key, bool value) { set(key, GgufValue::make_bool(value)); }
    // A UINT32 id; one that does not fit is an Error (gguf-py's struct.pack fails).
    void set_uint32(const std::string& key, int64_t value);
    void set_strings(const std::string& key, std::vector<std::string> values);
    void set_floats(const std::string& key, const std::vector<float>& values);
    void set_int32s(const std::string& key, const std::vector<int32_t>& values);

    GgufMetadata take() { return std::move(items_); }

  private:
    GgufMetadata items_;
    std::unordered_map<std::string, size_t> index_;
};

// ---- the files ----

// The input and its files, the JSON ones parsed on first use.
class Sources {
  public:
    Sources(const HfTokenizerInput& input, const HfTokenizerFiles& files)
        : input_(input), files_(files) {}

    const HfTokenizerInput& input() const { return input_; }
    const HfTokenizerFiles& files() const { return files_; }
    // dir/name, for messages.
    std::string path(std::string_view name) const;

    // tokenizer.json; nullptr when absent.
    const json* tokenizer_json();
    // tokenizer_config.json; nullptr when absent. It must be a JSON object.
    const json* tokenizer_config();

  private:
    const HfTokenizerInput& input_;
    const HfTokenizerFiles& files_;
    std::optional<json> tokenizer_json_;
    std::optional<json> tokenizer_config_;
};

// ---- vocabularies ----

struct Vocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;  // empty for BPE
    std::vector<int32_t> types;
};

// The SentencePiece vocabulary (hf-tokenizer-spm.cpp): the converter's
// _create_vocab_sentencepiece, or Phi-3's own variant of it.
Vocab sentencepiece_vocab(Sources& sources, bool phi3);
// The byte-level BPE vocabulary (hf-tokenizer-bpe.cpp): get_vocab_base over the tokenizer
// that transformers' AutoTokenizer builds from tokenizer.json and tokenizer_config.json.
Vocab bpe_vocab(Sources& sources);
// The converter's LlamaHfVocab (hf-tokenizer-bpe.cpp): a Llama tokenizer.json with byte
// fallback and no tokenizer.model, as SentencePiece-style tokens (scores -1000, no padding).
Vocab llama_hf_vocab(Sources& sources);
// tokenizer.ggml.pre for a byte-level BPE tokenizer.json (hf-tokenizer-pre.cpp).
std::string bpe_pre_tokenizer(Sources& sources);

// ---- special vocabulary (hf-tokenizer-special.cpp): gguf-py's SpecialVocab ----

struct SpecialVocabOptions {
    bool load_merges = false;
    std::optional<int64_t> n_vocab;  // ids at or above are skipped; none: no check
    std::vector<std::string> types = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    // _set_special_token calls made after loading (CodeLlama's eot)
    std::vector<std::pair<std::string, int64_t>> extra_ids;
};

// Loads the special vocabulary as SpecialVocab(dir, ...) does and adds its keys to `keys`
// (add_to_gguf): merges, special ids, add_* flags, chat template, normalizer flags.
void add_special_vocab(Sources& sources, const SpecialVocabOptions& options, KeyList& keys);

}  // namespace edgeq::hf_tokenizer
