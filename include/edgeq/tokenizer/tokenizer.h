// Tokenizers built from a GGUF file's tokenizer.ggml.* metadata: SentencePiece-style
// ("llama": scores, byte fallback), byte-level BPE ("gpt2": merges, with each family's
// pre-tokenizer named by tokenizer.ggml.pre) and WordPiece ("bert").
//
//   Tokenizer tok = Tokenizer::from_metadata(gguf.metadata());
//   std::vector<int32_t> ids = tok.encode("Hello world", /*add_special=*/true,
//                                         /*parse_special=*/false);
//   StreamDecoder out(tok);
//   for (int32_t id : ids) std::cout << out.push(id);   // never half a UTF-8 character
//   std::cout << out.flush();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/formats/gguf-value.h"

namespace edgeq {

class Tokenizer {
  public:
    // Reads tokenizer.ggml.* from `metadata`; throws an Error naming the key for a missing or
    // malformed one, or a model / pre-tokenizer edgeq does not implement (listing those it does).
    static Tokenizer from_metadata(const GgufMetadata& metadata);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // Token ids of `text`. add_special: BOS / EOS (and BERT's CLS / SEP) as the metadata's
    // add_bos_token / add_eos_token say. parse_special: text of control tokens
    // ("<start_of_turn>") becomes those tokens; otherwise it is tokenized as text. The text of
    // user-defined tokens always becomes those tokens, as in llama.cpp and Hugging Face
    // tokenizers. Longer special tokens are matched first. Ids equal llama.cpp's
    // llama_tokenize(add_special, parse_special) for the same metadata.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes a token stands for (byte tokens as their byte, "▁" as a space...). Control
    // tokens give "" unless `special`.
    std::string piece(int32_t id, bool special = false) const;
    // The text of a token as the vocabulary stores it (for printing).
    const std::string& token_text(int32_t id) const;

    int32_t n_vocab() const;
    int32_t bos() const;  // -1 if none
    int32_t eos() const;  // -1 if none
    // End of generation: EOS, EOT (<|eot_id|>, <end_of_turn>, <|im_end|>, <|end|>...).
    bool is_end_of_generation(int32_t id) const;
    bool is_control(int32_t id) const;

    struct Impl;

  private:
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into text without ever splitting a UTF-8 character: bytes of
// an incomplete character are held until the rest arrives.
class StreamDecoder {
  public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool special = false);
    std::string push(int32_t id);
    std::string flush();  // what is held, invalid bytes as U+FFFD

  private:
    const Tokenizer& tokenizer_;
    bool special_;
    std::string pending_;
};

}  // namespace edgeq
