// Continuous batching over the runtime's sessions.
#include "edgeq/server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "edgeq/runtime/batch-session.h"
#include "edgeq/runtime/stop-strings.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq::server {

const char* finish_reason_name(FinishReason reason) {
    switch (reason) {
        case FinishReason::none:
            return "none";
        case FinishReason::stop:
            return "stop";
        case FinishReason::length:
            return "length";
        case FinishReason::cancelled:
            return "cancelled";
        case FinishReason::timeout:
            return "timeout";
        case FinishReason::error:
            return "error";
    }
    return "none";
}

GenerationJob::Output GenerationJob::take(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return done_ || !text_.empty(); });
    Output out;
    out.text.swap(text_);
    out.started = started_;
    out.done = done_;
    out.finish = finish_;
    out.error = error_;
    out.n_generated = n_generated_;
    return out;
}

void GenerationJob::start() {
    std::lock_guard lock(mutex_);
    started_ = true;
}

void GenerationJob::emit(const std::string& text, int32_t n_generated) {
    {
        std::lock_guard lock(mutex_);
        text_ += text;
        n_generated_ = n_generated;
    }
    cv_.notify_all();
}

void GenerationJob::finish(FinishReason reason, int32_t n_generated, const std::string& error) {
    {
        std::lock_guard lock(mutex_);
        if (done_) return;
        done_ = true;
        n_generated_ = n_generated;
        finish_ = reason;
        error_ = error;
    }
    cv_.notify_all();
}

// A step's decoder: the items of several sequences in, the logits of the marked ones out.
class StepDecoder {
  public:
    virtual ~StepDecoder() = default;
    virtual void decode(std::span<const BatchItem> items) = 0;
    virtual const float* logits(int32_t i) const = 0;
    virtual void reset(int32_t seq) = 0;
    virtual int32_t n_ctx() const = 0;
};

namespace {

// One Session per sequence, each decoded on its own: the reference the batched decoder is
// checked against (--no-batch), and correct whatever the runtime's batching does.
class SessionStepDecoder : public StepDecoder {
  public:
    SessionStepDecoder(const LoadedModel& model, const SessionOptions& options, int32_t n_seq) {
        for (int32_t s = 0; s < n_seq; ++s)
            sessions_.push_back(std::make_unique<Session>(model, options));
    }
    void decode(std::span<const BatchItem> items) override {
        // Items of one sequence are consecutive in a step (the scheduler builds them so); each
        // run of them is one decode(), whose last logits are the only ones a step asks for.
        logits_.assign(items.size(), nullptr);
        size_t begin = 0;
        while (begin < items.size()) {
            const int32_t seq = items[begin].seq;
            if (seq < 0 || seq >= static_cast<int32_t>(sessions_.size()))
                fail("StepDecoder: sequence {} out of range", seq);
            size_t end = begin;
            tokens_.clear();
            while (end < items.size() && items[end].seq == seq)
                tokens_.push_back(items[end++].token);
            for (size_t i = begin; i + 1 < end; ++i)
                if (items[i].want_logits)
                    fail("StepDecoder: only the last item of a sequence may want logits");
            const float* last = sessions_[static_cast<size_t>(seq)]->decode(tokens_);
            if (items[end - 1].want_logits) logits_[end - 1] = last;
            begin = end;
        }
    }
    const float* logits(int32_t i) const override { return logits_.at(static_cast<size_t>(i)); }
    void reset(int32_t seq) override { sessions_.at(static_cast<size_t>(seq))->reset(); }
    int32_t n_ctx() const override { return sessions_.front()->n_ctx(); }

  private:
    std::vector<std::unique_ptr<Session>> sessions_;
    std::vector<const float*> logits_;
    std::vector<int32_t> tokens_;
};

// The runtime's BatchSession: every sequence's items of a step in one forward pass.
class BatchStepDecoder : public StepDecoder {
  public:
    BatchStepDecoder(const LoadedModel& model, const SessionOptions& options, int32_t n_seq)
        : batch_(model, options, n_seq) {}
    void decode(std::span<const BatchItem> items) override { batch_.decode(items); }
    const float* logits(int32_t i) const override { return batch_.logits(i); }
    void reset(int32_t seq) override { batch_.reset(seq); }
    int32_t n_ctx() const override { return batch_.n_ctx(); }

  private:
    BatchSession batch_;
};

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

}  // namespace

struct Scheduler::Slot {
    int32_t seq = 0;
    std::shared_ptr<GenerationJob> job;  // null: free
    size_t n_prompt_done = 0;
    std::optional<Sampler> sampler;
    std::optional<StreamDecoder> text;
    std::optional<StopStrings> stops;
    int32_t last_token = 0;
    int32_t n_generated = 0;
    Clock::time_point t_last_token;
};

Scheduler::Scheduler(const LoadedModel& model, const SchedulerOptions& options, Metrics& metrics)
    : model_(model), options_(options), metrics_(metrics) {
    if (options_.n_slots < 1)
        fail("serve: --parallel must be at least 1 (got {})", options_.n_slots);
    if (options_.max_queue < 0) fail("serve: --queue must not be negative");
    options_.session.all_logits = false;
    if (options_.batched) {
        decoder_ = std::make_unique<BatchStepDecoder>(model, options_.session, options_.n_slots);
    } else {
        decoder_ = std::make_unique<SessionStepDecoder>(model, options_.session, options_.n_slots);
    }
    n_ctx_ = decoder_->n_ctx();
    for (int32_t s = 0; s < options_.n_slots; ++s) {
        slots_.push_back(std::make_unique<Slot>());
        slots_.back()->seq = s;
    }
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    shutdown();
}

bool Scheduler::submit(std::shared_ptr<GenerationJob> job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        const int64_t free_slots = options_.n_slots - n_active_.load();
        // A job that a free slot will take at the next step does not count against the queue.
        if (static_cast<int64_t>(queue_.size()) >=
            options_.max_queue + std::max<int64_t>(free_slots, 0))
            return false;
        queue_.push_back(std::move(job));
    }
    cv_.notify_all();
    return true;
}

std::vector<float> Scheduler::embed(const std::vector<int32_t>& tokens) {
    std::vector<float> result;
    std::packaged_task<void()> task([&] {
        if (!embed_session_) embed_session_ = std::make_unique<Session>(model_, options_.session);
        embed_session_->reset();
        embed_session_->decode(tokens);
        result = embed_session_->mean_hidden();
        double norm = 0.0;
        for (float x : result) norm += static_cast<double>(x) * x;
        norm = std::sqrt(norm);
        if (norm > 0)
            for (float& x : result) x = static_cast<float>(x / norm);
    });
    std::future<void> done = task.get_future();
    {
        std::lock_guard lock(mutex_);
        if (stopping_) fail("the server is shutting down");
        tasks_.push_back(std::move(task));
    }
    cv_.notify_all();
    done.get();  // rethrows the task's exception
    return result;
}

int64_t Scheduler::queue_depth() const {
    std::lock_guard lock(mutex_);
    return static_cast<int64_t>(queue_.size());
}

void Scheduler::shutdown() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Scheduler::loop() {
    while (true) {
        std::deque<std::packaged_task<void()>> tasks;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] {
                return stopping_ || !tasks_.empty() || n_active_.load() > 0 ||
                       (!queue_.empty() && n_active_.load() < options_.n_slots);
            });
            if (stopping_) break;
            tasks.swap(tasks_);
            for (auto& slot : slots_) {
                if (slot->job || queue_.empty()) continue;
                while (!queue_.empty() && !slot->job) {
                    std::shared_ptr<GenerationJob> job = std::move(queue_.front());
                    queue_.pop_front();
                    if (job->cancelled()) {
                        job->finish(FinishReason::cancelled, 0);
                    } else if (Clock::now() >= job->deadline) {
                        job->finish(FinishReason::timeout, 0);
                    } else {
                        slot->job = std::move(job);
                    }
                }
                if (!slot->job) continue;
                Slot& s = *slot;
                s.n_prompt_done = 0;
                s.n_generated = 0;
                s.sampler.emplace(s.job->sampling, model_.n_vocab());
                try {
                    for (int32_t id : s.job->prompt) s.sampler->accept(id);
                } catch (const std::exception& e) {
                    s.job->finish(FinishReason::error, 0, e.what());
                    s.job.reset();
                    continue;
                }
                s.text.emplace(model_.tokenizer());
                s.stops.emplace(s.job->stops);
                s.job->start();
                n_active_.fetch_add(1);
            }
        }
        for (auto& task : tasks) task();
        try {
            step();
        } catch (const std::exception& e) {
            // Not expected (a request is checked before it is queued); the server goes on.
            log_warn("serve: a step failed: {}", e.what());
            for (auto& slot : slots_)
                if (slot->job) finish_slot(*slot, FinishReason::error, e.what());
        }
    }
    // Shutting down: whatever is running or waiting ends now.
    for (auto& slot : slots_)
        if (slot->job) finish_slot(*slot, FinishReason::cancelled);
    std::deque<std::packaged_task<void()>> tasks;
    {
        std::lock_guard lock(mutex_);
        for (auto& job : queue_) job->finish(FinishReason::cancelled, 0);
        queue_.clear();
        tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();  // embeddings queued before the stop still answer
}

void Scheduler::finish_slot(Slot& slot, FinishReason reason, const std::string& error) {
    if (reason == FinishReason::stop || reason == FinishReason::length) {
        // Release the text held back for an incomplete character or a possible stop string.
        std::string rest = slot.stops->push(slot.text->flush());
        if (!slot.stops->stopped()) rest += slot.stops->flush();
        if (!rest.empty()) slot.job->emit(rest, slot.n_generated);
    }
    const Clock::time_point now = Clock::now();
    metrics_.add_tokens(static_cast<int64_t>(slot.n_prompt_done), slot.n_generated);
    metrics_.observe_request_time(seconds_between(slot.job->t_submit, now));
    slot.job->finish(reason, slot.n_generated, error);
    slot.job.reset();
    slot.sampler.reset();
    slot.text.reset();
    slot.stops.reset();
    decoder_->reset(slot.seq);
    n_active_.fetch_sub(1);
}

void Scheduler::sample_slot(Slot& slot, const float* logits) {
    const int32_t id = slot.sampler->sample(logits);
    const Clock::time_point now = Clock::now();
    if (slot.n_generated == 0) {
        metrics_.observe_ttft(seconds_between(slot.job->t_submit, now));
    } else {
        metrics_.observe_token_time(seconds_between(slot.t_last_token, now));
    }
    slot.t_last_token = now;
    const Tokenizer& tok = model_.tokenizer();
    if (!slot.job->ignore_eos && tok.is_end_of_generation(id))
        return finish_slot(slot, FinishReason::stop);
    slot.sampler->accept(id);
    ++slot.n_generated;
    const std::string text = slot.stops->push(slot.text->push(id));
    if (!text.empty()) slot.job->emit(text, slot.n_generated);
    if (slot.stops->stopped()) return finish_slot(slot, FinishReason::stop);
    if (slot.n_generated >= slot.job->max_tokens) {
        finish_slot(slot, FinishReason::length);
        return;
    }
    slot.last_token = id;
}

void Scheduler::step() {
    const Clock::time_point now = Clock::now();
    std::vector<BatchItem>& items = items_;
    std::vector<Slot*>& owners = owners_;  // the slot of each item
    items.clear();
    owners.clear();
    // Generating slots first: one token each, so a long prompt never stalls a stream.
    for (auto& slot : slots_) {
        Slot& s = *slot;
        if (!s.job) continue;
        if (s.job->cancelled()) {
            finish_slot(s, FinishReason::cancelled);
        } else if (now >= s.job->deadline) {
            finish_slot(s, FinishReason::timeout);
        } else if (s.n_prompt_done == s.job->prompt.size()) {
            // Decoding the last sampled token needs one more position of the cache.
            if (static_cast<int64_t>(s.job->prompt.size()) + s.n_generated > n_ctx_) {
                finish_slot(s, FinishReason::length);  // the context is full
                continue;
            }
            items.push_back({.seq = s.seq, .token = s.last_token, .want_logits = true});
            owners.push_back(&s);
        }
    }
    const size_t budget = static_cast<size_t>(std::max(options_.session.n_batch, 1));
    for (auto& slot : slots_) {
        Slot& s = *slot;
        if (!s.job || s.n_prompt_done == s.job->prompt.size()) continue;
        const size_t room = budget > items.size() ? budget - items.size() : 0;
        const size_t take = std::min(room, s.job->prompt.size() - s.n_prompt_done);
        if (take == 0) break;
        for (size_t i = 0; i < take; ++i) {
            const bool last = s.n_prompt_done + i + 1 == s.job->prompt.size();
            items.push_back(
                {.seq = s.seq, .token = s.job->prompt[s.n_prompt_done + i], .want_logits = last});
            owners.push_back(&s);
        }
    }
    if (items.empty()) return;
    try {
        decoder_->decode(items);
    } catch (const std::exception& e) {
        // The engine refused the step (it should not: requests are checked against the
        // context first); every request in it ends with the error, the server goes on.
        log_warn("serve: a decoding step failed: {}", e.what());
        for (Slot* s : owners)
            if (s->job) finish_slot(*s, FinishReason::error, e.what());
        return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
        Slot& s = *owners[i];
        if (!s.job) continue;
        if (s.n_prompt_done < s.job->prompt.size()) ++s.n_prompt_done;
        if (items[i].want_logits) sample_slot(s, decoder_->logits(static_cast<int32_t>(i)));
    }
}

}  // namespace edgeq::server
