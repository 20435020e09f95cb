// The decoder engine: a GGUF model, memory-mapped, run on the CPU.
//
//   auto model = LoadedModel::load("gemma-3-270m-Q4_K_M.gguf");
//   Session session(*model, {.n_ctx = 2048, .n_threads = 2});
//   const float* logits = session.decode(prompt_ids);     // logits of the last token
//   const float* next = session.decode({&token, 1});      // one more token
//   session.reset();                                       // empty the KV cache
//
// One forward pass for every supported architecture (llama, mistral via llama, qwen2, qwen3,
// gemma2, gemma3, phi3), its differences expressed as fields of ModelSpec.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/formats/gguf.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq {

struct ModelSpec;  // edgeq/model/model-spec.h

class LoadedModel {
  public:
    // Maps and checks a GGUF file (architecture supported, every tensor present with the
    // shape the hyperparameters imply); throws an Error naming what is wrong.
    static std::unique_ptr<LoadedModel> load(const std::string& path);
    virtual ~LoadedModel() = default;

    virtual const ModelSpec& spec() const = 0;
    virtual const Tokenizer& tokenizer() const = 0;
    virtual const GgufFile& file() const = 0;
    virtual int32_t n_vocab() const = 0;
    virtual int32_t n_ctx_train() const = 0;
};

// Sees the input of every weight product a Session computes (calibration: edgeq imatrix).
// Called on the decoding thread just before the product, with the weight's GGUF name
// ("blk.0.attn_q.weight"; a tied output is "token_embd.weight") and its n_rows input rows of
// n_in floats, valid during the call only.
class ProjectionObserver {
  public:
    virtual ~ProjectionObserver() = default;
    virtual void observe(std::string_view weight, const float* x, int32_t n_rows, int64_t n_in) = 0;
};

struct SessionOptions {
    int32_t n_ctx = 4096;     // KV cache length (at most the model's training context)
    int32_t n_threads = 0;    // 0: all hardware threads
    int32_t n_batch = 512;    // prompt tokens processed per step
    bool kv_q8_0 = false;     // Q8_0 KV cache instead of F16
    bool kv_f32 = false;      // F32 KV cache (exact; for checks against reference logits)
    bool all_logits = false;  // keep the logits of every position of the last decode()
    ProjectionObserver* observer = nullptr;  // not owned; null: no observation (no cost)
};

class Session {
  public:
    Session(const LoadedModel& model, const SessionOptions& options);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Runs `tokens` at the next positions; returns the logits (n_vocab floats) of the last
    // one, valid until the next call. Throws an Error if the context would overflow.
    const float* decode(std::span<const int32_t> tokens);
    // With all_logits: the logits of position i of the last decode() (i < its token count).
    const float* logits_at(int32_t i) const;
    // Turns all_logits on or off for the next decode() calls (a prefix decoded without
    // logits, then positions to score with them); logits_at() forgets the last decode().
    void set_all_logits(bool on);
    // The mean-pooled final hidden state of the last decode() (n_embd floats).
    std::vector<float> mean_hidden() const;

    int32_t n_past() const;  // tokens in the KV cache
    int32_t n_ctx() const;
    void reset();                   // empties the KV cache
    void truncate(int32_t n_past);  // keeps the first n_past tokens

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace edgeq
