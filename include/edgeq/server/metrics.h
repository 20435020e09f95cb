// The server's counters and histograms, rendered in Prometheus' text exposition format.
//
//   Metrics m;
//   m.count_request("/v1/chat/completions", 200);
//   m.observe_ttft(0.120);
//   std::string text = m.render(queue_depth, active_slots, n_slots);
//
// Every method is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace edgeq::server {

// A cumulative histogram with fixed upper bounds (seconds), as Prometheus defines one.
class Histogram {
  public:
    static constexpr std::array<double, 14> k_bounds = {
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0};
    void observe(double value);
    // Lines "<name>_bucket{le=...} n", "<name>_sum", "<name>_count".
    std::string render(const std::string& name) const;
    uint64_t count() const { return count_; }

  private:
    std::array<uint64_t, k_bounds.size()> buckets_{};  // observations <= bound (not cumulative)
    uint64_t count_ = 0;
    double sum_ = 0.0;
};

class Metrics {
  public:
    void count_request(const std::string& endpoint, int status);
    void add_tokens(int64_t n_prompt, int64_t n_generated);
    void observe_ttft(double seconds);        // submission to first generated token
    void observe_token_time(double seconds);  // between two generated tokens of a request
    void observe_request_time(double seconds);

    // The text served at /metrics; queue depth and slot counts are read by the caller.
    std::string render(int64_t queue_depth, int64_t active_slots, int64_t n_slots) const;
    // Requests answered with `status` so far (all endpoints).
    uint64_t requests_with_status(int status) const;

  private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status) -> count
    int64_t prompt_tokens_ = 0;
    int64_t generated_tokens_ = 0;
    Histogram ttft_, token_time_, request_time_;
};

}  // namespace edgeq::server
