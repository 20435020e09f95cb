// The sampler: llama.cpp's default chain (see sampler.h for the order and each rule).
#include "edgeq/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

// Highest logit first; the lower id first among equal logits.
bool before(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
    if (n_vocab <= 0) fail("sampler: vocabulary size {} (expected at least 1)", n_vocab);
    recent_.resize(static_cast<size_t>(std::max(0, params.repeat_last_n)));
    counts_.assign(static_cast<size_t>(n_vocab), 0);
    candidates_.resize(static_cast<size_t>(n_vocab));
}

void Sampler::accept(int32_t token) {
    if (token < 0 || token >= n_vocab_) {
        fail("sampler: token id {} outside the vocabulary (0..{})", token, n_vocab_ - 1);
    }
    if (recent_.empty()) return;
    if (recent_size_ == recent_.size()) {  // the oldest leaves the window
        --counts_[static_cast<size_t>(recent_[recent_head_])];
        recent_[recent_head_] = token;
        recent_head_ = (recent_head_ + 1) % recent_.size();
    } else {
        recent_[(recent_head_ + recent_size_) % recent_.size()] = token;
        ++recent_size_;
    }
    ++counts_[static_cast<size_t>(token)];
}

void Sampler::reset() {
    for (size_t i = 0; i < recent_size_; ++i) {
        counts_[static_cast<size_t>(recent_[(recent_head_ + i) % recent_.size()])] = 0;
    }
    recent_head_ = 0;
    recent_size_ = 0;
}

// logit_of(t) is the logit of token t. Each distinct token is penalized once: its count is
// negated to mark it done and restored afterwards.
template <typename LogitOf>
void Sampler::apply_penalties(LogitOf&& logit_of) {
    const float repeat = params_.repeat_penalty;
    const float frequency = params_.frequency_penalty;
    const float presence = params_.presence_penalty;
    if (recent_size_ == 0 || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f)) return;
    for (size_t i = 0; i < recent_size_; ++i) {
        const auto t = static_cast<size_t>(recent_[(recent_head_ + i) % recent_.size()]);
        const int32_t count = counts_[t];
        if (count <= 0) continue;
        float& logit = logit_of(t);
        logit = logit <= 0.0f ? logit * repeat : logit / repeat;
        logit -= static_cast<float>(count) * frequency + presence;
        counts_[t] = -count;
    }
    for (size_t i = 0; i < recent_size_; ++i) {
        const auto t = static_cast<size_t>(recent_[(recent_head_ + i) % recent_.size()]);
        counts_[t] = std::abs(counts_[t]);
    }
}

void Sampler::penalize(float* logits) {
    apply_penalties([logits](size_t t) -> float& { return logits[t]; });
}

// A draw from the softmax of the first n candidates' logits at the temperature.
int32_t Sampler::draw(size_t n) {
    float max_logit = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < n; ++i) max_logit = std::max(max_logit, candidates_[i].first);
    if (!std::isfinite(max_logit)) return candidates_[0].second;
    const double inv_temp = 1.0 / static_cast<double>(params_.temperature);
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) {
        total += std::exp((static_cast<double>(candidates_[i].first) - max_logit) * inv_temp);
    }
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_) * total;
    double cumulative = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double w =
            std::exp((static_cast<double>(candidates_[i].first) - max_logit) * inv_temp);
        cumulative += w;
        if (u < cumulative && w > 0.0) return candidates_[i].second;
    }
    for (size_t i = n; i-- > 0;) {  // u rounded up to the total: the last token with weight
        if (std::exp((static_cast<double>(candidates_[i].first) - max_logit) * inv_temp) > 0.0)
            return candidates_[i].second;
    }
    return candidates_[0].second;
}

int32_t Sampler::sample(const float* logits) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n_vocab_; ++i) {
        const float l = logits[i];
        candidates_[static_cast<size_t>(i)] = {std::isnan(l) ? neg_inf : l, i};
    }
    apply_penalties([this](size_t t) -> float& { return candidates_[t].first; });

    if (params_.temperature <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < candidates_.size(); ++i) {
            if (candidates_[i].first > candidates_[best].first) best = i;
        }
        return candidates_[best].second;
    }

    auto first = candidates_.begin();
    size_t n = candidates_.size();
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
        n = static_cast<size_t>(params_.top_k);
        std::nth_element(first, first + static_cast<ptrdiff_t>(n), candidates_.end(), before);
    }

    // Probabilities at temperature 1 over the top-k set: top-p and min-p are defined on them.
    float max_logit = neg_inf;
    for (size_t i = 0; i < n; ++i) max_logit = std::max(max_logit, candidates_[i].first);
    if (!std::isfinite(max_logit)) {  // nothing finite: the lowest id among the candidates
        return std::min_element(first, first + static_cast<ptrdiff_t>(n), before)->second;
    }
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) {
        total += std::exp(static_cast<double>(candidates_[i].first) - max_logit);
    }

    // min-p keeps a prefix of the sorted order, as top-p does, and its threshold depends only
    // on the highest probability, which top-p never removes: applying it first selects the
    // same set and leaves fewer candidates to sort.
    if (params_.min_p > 0.0f) {
        const float threshold = max_logit + std::log(params_.min_p);
        const auto kept = std::partition(first, first + static_cast<ptrdiff_t>(n),
                                         [&](const auto& c) { return c.first >= threshold; });
        const auto n_kept = static_cast<size_t>(kept - first);
        if (n_kept == 0) {  // min_p > 1: only the highest survives
            std::nth_element(first, first, first + static_cast<ptrdiff_t>(n), before);
            n = 1;
        } else {
            n = n_kept;
        }
    }

    if (params_.top_p < 1.0f) {
        std::sort(first, first + static_cast<ptrdiff_t>(n), before);
        double cumulative = 0.0;
        for (size_t i = 0; i < n; ++i) {
            cumulative += std::exp(static_cast<double>(candidates_[i].first) - max_logit) / total;
            if (cumulative >= params_.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    return draw(n);
}

}  // namespace edgeq
