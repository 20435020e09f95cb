// The thread pool that every parallel loop in edgeq uses.
//
// A pool of n threads is the calling thread plus n-1 workers. A job splits an index range into
// chunks that threads take in order (an atomic counter) until none are left. Between jobs a
// worker watches for the next one for a few tens of microseconds (a token's matrix products
// follow each other closer than that) before it sleeps on a condition variable; the caller
// waits for the workers the same way.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgeq {

class ThreadPool {
  public:
    // `n_threads` counts the calling thread; 0 means one per hardware thread.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(begin, end, thread_index) on chunks of at most `grain` indices covering [0, n),
    // spread over the pool's threads; returns when all are done. If fn throws, the remaining
    // chunks are skipped and the first exception is rethrown here.
    // The callable is referred to, not copied: nothing is allocated, whatever it captures.
    template <typename Fn>
    void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
        run(job_of(fn), n, grain, false);
    }

    // As parallel_for, with chunks that start large (half of what is left, shared among the
    // threads) and shrink to `min_grain`: each thread works through long contiguous runs of
    // the range, as streaming weights from memory wants, while the last, small chunks still
    // even out threads that run at different speeds.
    template <typename Fn>
    void parallel_for_guided(int64_t n, int64_t min_grain, Fn&& fn) {
        run(job_of(fn), n, min_grain, true);
    }

    static int hardware_threads();

  private:
    // A reference to a callable: its address and a function that calls it.
    struct Job {
        void (*call)(const void* fn, int64_t begin, int64_t end, int thread);
        const void* fn;
        void operator()(int64_t begin, int64_t end, int thread) const {
            call(fn, begin, end, thread);
        }
    };
    template <typename Fn>
    static Job job_of(Fn& fn) {
        return {[](const void* f, int64_t begin, int64_t end, int thread) {
                    (*static_cast<Fn*>(const_cast<void*>(f)))(begin, end, thread);
                },
                &fn};
    }
    void run(Job job, int64_t n, int64_t grain, bool guided);
    void worker_main(int thread);
    void run_chunks(int thread);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::atomic<uint64_t> generation_{0};  // changed under mutex_, read anywhere
    std::atomic<int> n_busy_{0};           // workers still on the current job
    std::atomic<bool> stopping_{false};
    // The current job; valid while n_busy_ > 0 or the caller runs it.
    Job job_{};
    int64_t job_n_ = 0;
    int64_t job_grain_ = 1;
    bool job_guided_ = false;
    std::atomic<int64_t> next_{0};  // the next chunk's first index
    std::atomic<bool> failed_{false};
    std::exception_ptr error_;  // guarded by mutex_
};

}  // namespace edgeq
