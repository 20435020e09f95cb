// Importing Hugging Face checkpoints into the canonical model, as llama.cpp's converter
// (convert_hf_to_gguf.py) would write them: the same metadata keys, values and order, the same
// tensors (names, shapes, transforms) in the same order, so that a GGUF written from the model
// loads in llama.cpp and matches the Python converter's output.
//
//   HfCheckpoint checkpoint = HfCheckpoint::open("TinyLlama-1.1B");
//   Model model = import_hf(checkpoint, {.file_type = 1});   // views into the checkpoint's files
//
// Families: LlamaForCausalLM (Llama 2/3.x, TinyLlama, SmolLM), MistralForCausalLM,
// Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM and
// Gemma3ForConditionalGeneration (text), Phi3ForCausalLM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgeq/formats/hf-checkpoint.h"
#include "edgeq/model/model.h"

namespace edgeq {

struct HfImportOptions {
    uint32_t file_type = 1;  // general.file_type to record (llama.cpp's llama_ftype)
};

// The model's tensors view the checkpoint's mapped files: keep the checkpoint alive while the
// model is used. Throws an Error naming the file and field for anything it cannot convert.
Model import_hf(const HfCheckpoint& checkpoint, const HfImportOptions& options);

// The config.json architectures import_hf accepts.
std::vector<std::string> supported_hf_architectures();

}  // namespace edgeq
