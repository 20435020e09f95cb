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
        int64_t begin = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (next_ >= job_n_ || error_) return;
            begin = next_;
            next_ = std::min(job_n_, next_ + job_grain_);
        }
        const int64_t end = std::min(job_n_, begin + job_grain_);
        try {
            job_(begin, end, thread);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
            return;
        }
    }
}

void ThreadPool::worker_main(int thread) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
        }
        run_chunks(thread);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --n_busy_;
        }
        done_.notify_one();
    }
}

void ThreadPool::run(Job fn, int64_t n, int64_t grain) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    if (n_threads_ == 1 || n <= grain) {
        for (int64_t begin = 0; begin < n; begin += grain) fn(begin, std::min(n, begin + grain), 0);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = fn;
        job_n_ = n;
        job_grain_ = grain;
        next_ = 0;
        error_ = nullptr;
        n_busy_ = static_cast<int>(workers_.size());
        ++generation_;
    }
    wake_.notify_all();
    run_chunks(0);
    std::exception_ptr error;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return n_busy_ == 0; });
        job_ = {};
        error = std::exchange(error_, nullptr);
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace edgeq
