// Prometheus text format: https://prometheus.io/docs/instrumenting/exposition_formats/
#include "edgeq/server/metrics.h"

#include <fmt/format.h>

namespace edgeq::server {

void Histogram::observe(double value) {
    for (size_t i = 0; i < k_bounds.size(); ++i) {
        if (value <= k_bounds[i]) {
            ++buckets_[i];
            break;
        }
    }
    ++count_;
    sum_ += value;
}

std::string Histogram::render(const std::string& name) const {
    std::string out;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < k_bounds.size(); ++i) {
        cumulative += buckets_[i];
        out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, k_bounds[i], cumulative);
    }
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
    out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
    return out;
}

void Metrics::count_request(const std::string& endpoint, int status) {
    std::lock_guard lock(mutex_);
    ++requests_[{endpoint, status}];
}

void Metrics::add_tokens(int64_t n_prompt, int64_t n_generated) {
    std::lock_guard lock(mutex_);
    prompt_tokens_ += n_prompt;
    generated_tokens_ += n_generated;
}

void Metrics::observe_ttft(double seconds) {
    std::lock_guard lock(mutex_);
    ttft_.observe(seconds);
}

void Metrics::observe_token_time(double seconds) {
    std::lock_guard lock(mutex_);
    token_time_.observe(seconds);
}

void Metrics::observe_request_time(double seconds) {
    std::lock_guard lock(mutex_);
    request_time_.observe(seconds);
}

uint64_t Metrics::requests_with_status(int status) const {
    std::lock_guard lock(mutex_);
    uint64_t n = 0;
    for (const auto& [key, count] : requests_)
        if (key.second == status) n += count;
    return n;
}

std::string Metrics::render(int64_t queue_depth, int64_t active_slots, int64_t n_slots) const {
    std::lock_guard lock(mutex_);
    std::string out;
    out += "# HELP edgeq_requests_total HTTP requests answered, by endpoint and status.\n";
    out += "# TYPE edgeq_requests_total counter\n";
    for (const auto& [key, count] : requests_)
        out += fmt::format("edgeq_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first,
                           key.second, count);
    out += "# HELP edgeq_prompt_tokens_total Prompt tokens processed.\n";
    out += "# TYPE edgeq_prompt_tokens_total counter\n";
    out += fmt::format("edgeq_prompt_tokens_total {}\n", prompt_tokens_);
    out += "# HELP edgeq_generated_tokens_total Tokens generated.\n";
    out += "# TYPE edgeq_generated_tokens_total counter\n";
    out += fmt::format("edgeq_generated_tokens_total {}\n", generated_tokens_);
    out +=
        "# HELP edgeq_time_to_first_token_seconds From a request's arrival to its first token.\n";
    out += "# TYPE edgeq_time_to_first_token_seconds histogram\n";
    out += ttft_.render("edgeq_time_to_first_token_seconds");
    out += "# HELP edgeq_time_per_token_seconds Between two generated tokens of a request.\n";
    out += "# TYPE edgeq_time_per_token_seconds histogram\n";
    out += token_time_.render("edgeq_time_per_token_seconds");
    out += "# HELP edgeq_request_duration_seconds Generation requests, arrival to last token.\n";
    out += "# TYPE edgeq_request_duration_seconds histogram\n";
    out += request_time_.render("edgeq_request_duration_seconds");
    out += "# HELP edgeq_queue_depth Requests waiting for a slot.\n";
    out += "# TYPE edgeq_queue_depth gauge\n";
    out += fmt::format("edgeq_queue_depth {}\n", queue_depth);
    out += "# HELP edgeq_active_slots Slots generating now.\n";
    out += "# TYPE edgeq_active_slots gauge\n";
    out += fmt::format("edgeq_active_slots {}\n", active_slots);
    out += "# HELP edgeq_slots Slots (--parallel).\n";
    out += "# TYPE edgeq_slots gauge\n";
    out += fmt::format("edgeq_slots {}\n", n_slots);
    return out;
}

}  // namespace edgeq::server
