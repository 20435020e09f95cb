#include "edgeq/core/thread-pool.h"

#include <algorithm>

namespace edgeq {

int ThreadPool::hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) {
    n_threads_ = n_threads > 0 ? n_threads : hardware_threads();
    workers_.reserve(static_cast<size_t>(n_threads_ - 1));
    for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

namespace {

// How long a thread watches for the next job (or for the workers to finish) before it sleeps:
// about 30 microseconds of pause instructions.
constexpr int k_spin = 1500;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
}

void ThreadPool::run_chunks(int thread) {
    for (;;) {
        if (failed_.load(std::memory_order_relaxed)) return;
        int64_t begin = 0, end = 0;
        if (job_guided_) {
            begin = next_.load(std::memory_order_relaxed);
            do {
                if (begin >= job_n_) return;
                const int64_t share = (job_n_ - begin) / (2 * int64_t{n_threads_});
                end = std::min(job_n_, begin + std::max(job_grain_, share));
            } while (!next_.compare_exchange_weak(begin, end, std::memory_order_relaxed));
        } else {
            begin = next_.fetch_add(job_grain_, std::memory_order_relaxed);
            if (begin >= job_n_) return;
            end = std::min(job_n_, begin + job_grain_);
        }
        try {
            job_(begin, end, thread);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
            failed_ = true;
            return;
        }
    }
}

void ThreadPool::worker_main(int thread) {
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < k_spin && generation_.load(std::memory_order_acquire) == seen &&
                        !stopping_.load(std::memory_order_relaxed);
             ++i)
            cpu_relax();
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
        }
        run_chunks(thread);
        if (n_busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // The last one out wakes the caller if it sleeps (it checks n_busy_ under mutex_).
            std::lock_guard<std::mutex> lock(mutex_);
            done_.notify_one();
        }
    }
}

void ThreadPool::run(Job fn, int64_t n, int64_t grain, bool guided) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    if (n_threads_ == 1 || n <= grain) {
        for (int64_t begin = 0; begin < n; begin += grain) fn(begin, std::min(n, begin + grain), 0);
        return;
    }
    job_ = fn;
    job_n_ = n;
    job_grain_ = grain;
    job_guided_ = guided;
    next_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    n_busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
        // Under the mutex: a worker about to sleep either sees the new generation or is woken.
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_chunks(0);
    for (int i = 0; i < k_spin && n_busy_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
    std::exception_ptr error;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return n_busy_.load(std::memory_order_acquire) == 0; });
        job_ = {};
        error = std::exchange(error_, nullptr);
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace edgeq
