// Random inputs for tests. Every test draws fresh values; the seed is printed with any
// failure (SCOPED_TRACE) and EDGEQ_TEST_SEED=N replays a run.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace edgeq::testing {

inline uint64_t test_seed() {
    if (const char* env = std::getenv("EDGEQ_TEST_SEED")) return std::strtoull(env, nullptr, 10);
    return std::random_device{}();
}

class Random {
  public:
    Random() : seed_(test_seed()), rng_(seed_) {}
    uint64_t seed() const { return seed_; }
    std::string trace() const { return "seed " + std::to_string(seed_); }

    std::mt19937_64& engine() { return rng_; }
    int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    float uniform(float lo, float hi) {
        return std::uniform_real_distribution<float>(lo, hi)(rng_);
    }

    std::vector<float> normal(size_t n, float sigma = 1.0f) {
        std::normal_distribution<float> dist(0.0f, sigma);
        std::vector<float> v(n);
        for (auto& x : v) x = dist(rng_);
        return v;
    }

    // Student-t with 3 degrees of freedom (heavy tails), with a few outlier columns scaled
    // up, as trained weight matrices have.
    std::vector<float> heavy_tailed(size_t n_rows, size_t n_cols, float sigma = 1.0f) {
        std::student_t_distribution<float> dist(3.0f);
        std::vector<float> column_scale(n_cols, 1.0f);
        for (auto& c : column_scale) {
            if (uniform_int(0, 31) == 0) c = uniform(4.0f, 16.0f);
        }
        std::vector<float> v(n_rows * n_cols);
        for (size_t r = 0; r < n_rows; ++r) {
            for (size_t c = 0; c < n_cols; ++c)
                v[r * n_cols + c] = sigma * column_scale[c] * dist(rng_);
        }
        return v;
    }

    // Positive importance weights spread over a few orders of magnitude, like an imatrix.
    std::vector<float> importance(size_t n) {
        std::normal_distribution<float> dist(0.0f, 1.5f);
        std::vector<float> v(n);
        for (auto& x : v) x = std::exp(dist(rng_));
        return v;
    }

  private:
    uint64_t seed_;
    std::mt19937_64 rng_;
};

}  // namespace edgeq::testing
