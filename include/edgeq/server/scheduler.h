// The scheduler: --parallel N slots decoded together, one step at a time (continuous
// batching), fed from a bounded queue.
//
//   Scheduler scheduler(*model, {.n_slots = 4, .max_queue = 32, .session = {...}}, metrics);
//   auto job = std::make_shared<GenerationJob>();
//   job->prompt = ids; job->max_tokens = 64; job->sampling = params;
//   if (!scheduler.submit(job)) { /* queue full: 503 */ }
//   for (auto out = job->take(100ms); !out.done; out = job->take(100ms)) send(out.text);
//
// Each step decodes, in one batch, the next token of every generating slot and a share of the
// prompts of newly admitted requests (at most n_batch tokens in all); a request joins at the
// next step after a slot frees and leaves as soon as it finishes. A cancelled job (client gone,
// deadline passed) leaves at the next step and frees its slot.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgeq/runtime/batch-session.h"
#include "edgeq/runtime/engine.h"
#include "edgeq/runtime/sampler.h"
#include "edgeq/server/metrics.h"

namespace edgeq::server {

using Clock = std::chrono::steady_clock;

enum class FinishReason { none, stop, length, cancelled, timeout, error };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", ...

// One generation request, shared by the HTTP handler that reads its output and the scheduler
// that writes it. The inputs are set before submit() and not touched afterwards.
class GenerationJob {
  public:
    std::vector<int32_t> prompt;  // non-empty, shorter than the context
    SamplingParams sampling;
    int32_t max_tokens = 16;  // >= 1; prompt + max_tokens fits the context
    std::vector<std::string> stops;
    bool ignore_eos = false;  // end-of-generation tokens do not end it (benchmarks)
    Clock::time_point t_submit = Clock::now();
    Clock::time_point deadline = Clock::time_point::max();

    struct Output {
        std::string text;  // produced since the last take()
        bool started = false;
        bool done = false;
        FinishReason finish = FinishReason::none;
        std::string error;
        int32_t n_generated = 0;
    };
    // Waits up to `timeout` for new text or the end, and returns what came.
    Output take(std::chrono::milliseconds timeout);
    void cancel() { cancelled_.store(true); }
    bool cancelled() const { return cancelled_.load(); }

    // The scheduler's side.
    void start();
    void emit(const std::string& text, int32_t n_generated);
    void finish(FinishReason reason, int32_t n_generated, const std::string& error = {});

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::string text_;
    int32_t n_generated_ = 0;
    bool started_ = false;
    bool done_ = false;
    FinishReason finish_ = FinishReason::none;
    std::string error_;
    std::atomic<bool> cancelled_{false};
};

// What a step decodes: the runtime's BatchSession, or one Session per sequence.
class StepDecoder;

struct SchedulerOptions {
    int32_t n_slots = 4;     // requests generating at once
    int32_t max_queue = 32;  // requests waiting for a slot; more are refused
    SessionOptions session;  // per slot: n_ctx, n_threads, n_batch (tokens per step)
    bool batched = true;     // false: one Session per slot, decoded one after another
};

class Scheduler {
  public:
    Scheduler(const LoadedModel& model, const SchedulerOptions& options, Metrics& metrics);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Queues a job; false when the queue is full or the scheduler is shutting down.
    bool submit(std::shared_ptr<GenerationJob> job);
    // The mean-pooled, L2-normalised final hidden state of `tokens`, computed on the
    // scheduler's thread between two steps. Throws an Error as the engine does.
    std::vector<float> embed(const std::vector<int32_t>& tokens);
    // Finishes every queued and running job as cancelled and stops the thread. Idempotent.
    void shutdown();

    int32_t n_slots() const { return options_.n_slots; }
    int32_t n_ctx() const { return n_ctx_; }
    int64_t queue_depth() const;
    int64_t active_slots() const { return n_active_.load(); }

    struct Slot;

  private:
    void loop();
    void step();
    void finish_slot(Slot& slot, FinishReason reason, const std::string& error = {});
    void sample_slot(Slot& slot, const float* logits);

    const LoadedModel& model_;
    SchedulerOptions options_;
    Metrics& metrics_;
    int32_t n_ctx_ = 0;
    std::unique_ptr<StepDecoder> decoder_;
    std::unique_ptr<Session> embed_session_;  // made on first use
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<BatchItem> items_;  // a step's items and their slots, reused step to step
    std::vector<Slot*> owners_;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<GenerationJob>> queue_;
    std::deque<std::packaged_task<void()>> tasks_;
    bool stopping_ = false;
    std::atomic<int64_t> n_active_{0};
    std::thread thread_;
};

}  // namespace edgeq::server
