// Choosing the next token from logits: greedy, or temperature with top-k, top-p and min-p,
// after repetition / frequency / presence penalties over the recent tokens; seeded.
//
//   Sampler sampler(SamplingParams{.temperature = 0.7f, .seed = 42}, n_vocab);
//   int32_t next = sampler.sample(logits);   // logits: n_vocab floats (left unchanged)
//   sampler.accept(next);                    // feeds the penalties
//
// The order is llama.cpp's default chain, so the same flags mean the same thing:
//   1. penalties over the last repeat_last_n accepted tokens, once per distinct token t
//      seen c times: the logit is divided by repeat_penalty if positive, multiplied if not,
//      then c * frequency_penalty + presence_penalty is subtracted;
//   2. greedy (temperature <= 0): the highest penalized logit, the lowest id on ties; or
//   3. top-k: the k highest logits (ties broken by lower id);
//   4. top-p: the smallest prefix, highest first, whose probability (softmax of the top-k
//      logits at temperature 1) reaches top_p;
//   5. min-p: tokens whose probability is at least min_p times the highest's;
//   6. temperature: the survivors' logits divided by it;
//   7. a draw from their softmax with the seeded std::mt19937_64.
// Filters always keep at least one token. After construction nothing allocates.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
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
    // Records a generated (or prompt) token for the penalties; an id outside the vocabulary
    // is an Error.
    void accept(int32_t token);
    void reset();  // forgets the recent tokens (the random state continues)
    // Step 1 alone, in place on n_vocab logits: what sample() does to its copy first.
    void penalize(float* logits);

    const SamplingParams& params() const { return params_; }

  private:
    template <typename LogitOf>
    void apply_penalties(LogitOf&& logit_of);
    int32_t draw(size_t n);

    SamplingParams params_;
    int32_t n_vocab_;
    std::mt19937_64 rng_;
    // The last repeat_last_n accepted tokens as a ring, and how often each id occurs in it.
    std::vector<int32_t> recent_;
    size_t recent_head_ = 0;
    size_t recent_size_ = 0;
    std::vector<int32_t> counts_;
    std::vector<std::pair<float, int32_t>> candidates_;  // reused: no allocation per token
};

}  // namespace edgeq
