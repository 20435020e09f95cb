// Choosing the next token from logits: greedy, or temperature with top-k, top-p and min-p,
// after repetition / frequency / presence penalties over the recent tokens; seeded.
//
//   Sampler sampler(SamplingParams{.temperature = 0.7f, .seed = 42}, n_vocab);
//   int32_t next = sampler.sample(logits);   // logits: n_vocab floats (left unchanged)
//   sampler.accept(next);                    // feeds the penalties
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace edgeq {

struct SamplingParams {
    float temperature = 0.8f;  // <= 0: greedy (the highest logit; the lowest id on ties)
    int32_t top_k = 40;        // <= 0: all
    float top_p = 0.95f;       // >= 1: off
    float min_p = 0.05f;       // <= 0: off
    float repeat_penalty =
        1.0f;  // 1: off (llama.cpp's rule: divide positive logits, multiply negative)
    int32_t repeat_last_n = 64;  // how many recent tokens the penalties look at
    float frequency_penalty = 0.0f;
    float presence_penalty = 0.0f;
    uint64_t seed = 0xedce;
};

class Sampler {
  public:
    Sampler(const SamplingParams& params, int32_t n_vocab);
    int32_t sample(const float* logits);
    void accept(int32_t token);
    void reset();  // forgets the recent tokens (the random state continues)

  private:
    SamplingParams params_;
    int32_t n_vocab_;
    std::mt19937_64 rng_;
    std::deque<int32_t> recent_;
    std::vector<std::pair<float, int32_t>> candidates_;  // reused: no allocation per token
};

}  // namespace edgeq
