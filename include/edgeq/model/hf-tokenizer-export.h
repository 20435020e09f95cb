// A GGUF vocabulary as Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json),
// the form onnxruntime-genai (through onnxruntime-extensions) and transformers read.
//
//   if (auto why = write_hf_tokenizer(file, "out/")) fmt::print("no tokenizer files: {}\n", *why);
//
// Served: byte-level BPE ("gpt2") with the pre-tokenizers named gpt2 / default, llama-bpe
// (llama3), qwen2 and smollm / starcoder; SentencePiece ("llama", Llama 2, Gemma) as a BPE with
// byte fallback whose merges are derived from the piece scores (a pair merges when both halves
// and their concatenation are pieces; the higher the concatenation's score, the earlier).
#pragma once

#include <optional>
#include <string>

#include "edgeq/formats/gguf.h"

namespace edgeq {

// Writes DIR/tokenizer.json and DIR/tokenizer_config.json. Returns why not (nothing written)
// for a vocabulary or pre-tokenizer it does not serve; throws an Error for malformed metadata.
std::optional<std::string> write_hf_tokenizer(const GgufFile& file, const std::string& dir);

}  // namespace edgeq
