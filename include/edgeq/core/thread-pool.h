// The thread pool that every parallel loop in edgeq uses.
//
// A pool of n threads is the calling thread plus n-1 workers that sleep between jobs. A job
// splits an index range into chunks that threads take in order until none are left.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
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
    void parallel_for(int64_t n, int64_t grain,
                      const std::function<void(int64_t begin, int64_t end, int thread)>& fn);

    static int hardware_threads();

  private:
    void worker_main(int thread);
    void run_chunks(int thread);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    uint64_t generation_ = 0;
    int n_busy_ = 0;
    bool stopping_ = false;

    // The current job; valid while n_busy_ > 0 or the caller runs it.
    const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
    int64_t job_n_ = 0;
    int64_t job_grain_ = 1;
    int64_t next_ = 0;  // guarded by mutex_
    std::exception_ptr error_;
};

}  // namespace edgeq
