// Writing a model as an ONNX decoder with a KV cache, in the layout ONNX Runtime GenAI uses:
//
//   inputs   input_ids [batch, seq] int64, attention_mask [batch, total_seq] int64,
//            position_ids [batch, seq] int64,
//            past_key_values.{i}.key / .value [batch, n_head_kv, past_seq, head_dim]
//   outputs  logits [batch, seq, n_vocab] float32, present.{i}.key / .value
//            [batch, n_head_kv, total_seq, head_dim]
//
// The graph is built from the runtime's ModelSpec (every architecture edgeq runs: Llama,
// Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3, Phi-3), so the families differ by its fields, not by
// per-family code. Weights are read from the GGUF file (any type edgeq can dequantize) and
// streamed into DIR/model.onnx.data one tensor at a time.
//
//   GgufFile file = GgufFile::open("model.gguf");
//   OnnxExportReport r = export_onnx(file, "out/", {.ops = OnnxOps::standard}, pool);
//
// Llama's GGUF Q/K rows are permuted for adjacent-pair RoPE; the export puts them back in
// Hugging Face's order so that one rotate-halves RoPE serves every family.
#pragma once

#include <cstdint>
#include <string>

#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/gguf.h"

namespace edgeq {

enum class OnnxPrecision { fp32, fp16, int8, int4 };
enum class OnnxOps {
    ort,       // ONNX Runtime's contrib operators where they serve the model
    standard,  // only standard ONNX operators (opset 17)
};

struct OnnxExportOptions {
    OnnxPrecision precision = OnnxPrecision::fp32;
    OnnxOps ops = OnnxOps::ort;
    int block_size = 32;        // int4/int8: values per quantization block along K
    bool symmetric = true;      // int4/int8: no zero points
    int accuracy_level = 4;     // MatMulNBits' accuracy_level (0-4)
    int32_t max_positions = 0;  // rows of the RoPE tables; 0: the model's training context
    // ort ops: attention through ONNX Runtime's GroupQueryAttention (the masks, sliding windows
    // and padding as its attention_bias, RoPE before it) where the model's key and value heads
    // have one size. Off by default: bench/onnx_vs_ort.py measured it no faster than the
    // standard-operator subgraph in ONNX Runtime 1.32 on the CPU.
    bool fused_attention = false;
};

struct OnnxExportReport {
    uint64_t model_bytes = 0;  // model.onnx
    uint64_t data_bytes = 0;   // model.onnx.data
    int64_t n_weights = 0;     // values in the weight matrices and vectors
};

// Writes DIR/model.onnx, DIR/model.onnx.data and DIR/genai_config.json (DIR must exist).
// Throws an Error for a model or option the export cannot serve.
OnnxExportReport export_onnx(const GgufFile& file, const std::string& dir,
                             const OnnxExportOptions& options, ThreadPool& pool);

}  // namespace edgeq
