// ThreadPool::parallel_for: every index exactly once, in chunks of at most `grain`, with
// thread indices below size(); exceptions reach the caller and leave the pool usable; many
// jobs in a row; pools created and destroyed idle. parallel_for_guided: every index exactly
// once, in chunks that are a share of what was left and never below the minimum grain but at
// the very end.
#include "edgeq/core/thread-pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test-random.h"

namespace edgeq {
namespace {

// Runs one job and checks its coverage: each index visited once, chunks non-empty, within
// [0, n), no larger than grain, and run by a thread of the pool.
void expect_exact_cover(ThreadPool& pool, int64_t n, int64_t grain) {
    SCOPED_TRACE("threads " + std::to_string(pool.size()) + " n " + std::to_string(n) + " grain " +
                 std::to_string(grain));
    std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
    std::atomic<int> bad_chunks{0};
    std::atomic<int> bad_threads{0};
    std::atomic<int64_t> n_chunks{0};
    pool.parallel_for(n, grain, [&](int64_t begin, int64_t end, int thread) {
        if (begin < 0 || end > n || begin >= end || end - begin > std::max<int64_t>(1, grain)) {
            bad_chunks.fetch_add(1);
            return;
        }
        if (thread < 0 || thread >= pool.size()) bad_threads.fetch_add(1);
        n_chunks.fetch_add(1);
        for (int64_t i = begin; i < end; ++i) visits[static_cast<size_t>(i)].fetch_add(1);
    });
    EXPECT_EQ(bad_chunks.load(), 0);
    EXPECT_EQ(bad_threads.load(), 0);
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (visits[static_cast<size_t>(i)].load() != 1) {
            if (wrong++ < 5) {
                ADD_FAILURE() << "index " << i << " visited " << visits[static_cast<size_t>(i)]
                              << " times";
            }
        }
    }
    EXPECT_EQ(wrong, 0);
    if (n > 0) {  // at least ceil(n / grain) chunks are needed
        const int64_t g = std::max<int64_t>(1, grain);
        EXPECT_GE(n_chunks.load(), (n + g - 1) / g);
    } else {
        EXPECT_EQ(n_chunks.load(), 0);
    }
}

TEST(ThreadPool, SizeCountsTheCaller) {
    for (int t = 1; t <= 8; ++t) EXPECT_EQ(ThreadPool(t).size(), t);
    EXPECT_EQ(ThreadPool(0).size(), ThreadPool::hardware_threads());
    EXPECT_GE(ThreadPool::hardware_threads(), 1);
}

// One guided job: each index once; each chunk, in the order of its first index, as long as
// the pool's rule allows (the larger of min_grain and what is left / (2 * threads), cut at n).
void expect_guided_cover(ThreadPool& pool, int64_t n, int64_t min_grain) {
    SCOPED_TRACE("guided, threads " + std::to_string(pool.size()) + " n " + std::to_string(n) +
                 " min grain " + std::to_string(min_grain));
    std::vector<std::atomic<int>> visits(static_cast<size_t>(std::max<int64_t>(n, 0)));
    std::vector<std::atomic<int64_t>> chunk_end(static_cast<size_t>(std::max<int64_t>(n, 0)));
    std::atomic<int> bad{0};
    pool.parallel_for_guided(n, min_grain, [&](int64_t begin, int64_t end, int thread) {
        if (begin < 0 || end > n || begin >= end || thread < 0 || thread >= pool.size()) {
            bad.fetch_add(1);
            return;
        }
        chunk_end[static_cast<size_t>(begin)].store(end);
        for (int64_t i = begin; i < end; ++i) visits[static_cast<size_t>(i)].fetch_add(1);
    });
    EXPECT_EQ(bad.load(), 0);
    for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(visits[static_cast<size_t>(i)].load(), 1) << "index " << i;
    }
    const int64_t g = std::max<int64_t>(1, min_grain);
    // One thread, or work within one chunk: the caller runs chunks of the minimum grain.
    const bool plain = pool.size() == 1 || n <= g;
    int64_t chunks = 0;
    for (int64_t begin = 0; begin < n; ++chunks) {
        const int64_t end = chunk_end[static_cast<size_t>(begin)].load();
        ASSERT_GT(end, begin) << "no chunk starts at " << begin;
        const int64_t share = plain ? g : std::max(g, (n - begin) / (2 * int64_t{pool.size()}));
        EXPECT_EQ(end, std::min(n, begin + share)) << "chunk at " << begin;
        begin = end;
    }
    // Shares of what is left: about 2 T ln(n / g) chunks, far fewer than n / g.
    const int64_t t = pool.size();
    if (!plain && n >= 256 * g * t) {
        EXPECT_LT(chunks, n / g / 4);
    }
}

// Fixed and guided jobs, mixed on one pool.
TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int threads = 1; threads <= 8; ++threads) {
        ThreadPool pool(threads);
        for (int64_t n : {0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 100, 1000, 4097}) {
            for (int64_t grain : {0, 1, 2, 3, 4, 7, 16, 64, 1000, 5000}) {
                expect_exact_cover(pool, n, grain);
                expect_guided_cover(pool, n, grain);
            }
        }
        for (int trial = 0; trial < 10; ++trial) {
            expect_exact_cover(pool, random.uniform_int(0, 20000), random.uniform_int(1, 300));
            expect_guided_cover(pool, random.uniform_int(0, 20000), random.uniform_int(1, 64));
        }
    }
}

TEST(ThreadPool, NegativeCountDoesNothing) {
    ThreadPool pool(3);
    std::atomic<int> calls{0};
    pool.parallel_for(-5, 1, [&](int64_t, int64_t, int) { calls.fetch_add(1); });
    EXPECT_EQ(calls.load(), 0);
}

TEST(ThreadPool, UsesSeveralThreadsWhenWorkIsLong) {
    // Not a guarantee of the interface, but a pool that never runs a worker is broken: with
    // chunks that each wait until a second thread has started one, the job can only finish
    // if two threads take part.
    ThreadPool pool(4);
    std::atomic<int> started{0};
    std::vector<std::atomic<int>> by_thread(4);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    pool.parallel_for(64, 1, [&](int64_t, int64_t, int thread) {
        by_thread[static_cast<size_t>(thread)].fetch_add(1);
        started.fetch_add(1);
        while (std::chrono::steady_clock::now() < deadline) {
            int busy_threads = 0;
            for (auto& b : by_thread) busy_threads += b.load() > 0 ? 1 : 0;
            if (busy_threads >= 2) break;
            std::this_thread::yield();
        }
    });
    int busy_threads = 0;
    for (auto& b : by_thread) busy_threads += b.load() > 0 ? 1 : 0;
    EXPECT_GE(busy_threads, 2);
    EXPECT_EQ(started.load(), 64);
}

TEST(ThreadPool, ExceptionReachesCallerAndPoolStaysUsable) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int threads = 1; threads <= 8; ++threads) {
        ThreadPool pool(threads);
        for (int trial = 0; trial < 20; ++trial) {
            const int64_t n = random.uniform_int(1, 5000);
            const int64_t grain = random.uniform_int(1, 100);
            const int64_t bad = random.uniform_int(0, static_cast<int>(n) - 1);
            try {
                pool.parallel_for(n, grain, [&](int64_t begin, int64_t end, int) {
                    if (begin <= bad && bad < end) {
                        throw std::runtime_error("index " + std::to_string(bad));
                    }
                });
                ADD_FAILURE() << "no exception for threads " << threads << " n " << n;
            } catch (const std::runtime_error& e) {
                EXPECT_EQ(std::string(e.what()), "index " + std::to_string(bad));
            }
            // The next jobs run normally.
            expect_exact_cover(pool, n, grain);
        }
        // The same from a guided job.
        EXPECT_THROW(pool.parallel_for_guided(5000, 3,
                                              [](int64_t begin, int64_t end, int) {
                                                  if (begin <= 4321 && 4321 < end)
                                                      throw std::out_of_range("4321");
                                              }),
                     std::out_of_range);
        expect_guided_cover(pool, 5000, 3);
        // Several chunks throwing at once: one of them comes back, the rest are dropped.
        EXPECT_THROW(pool.parallel_for(1000, 1,
                                       [](int64_t begin, int64_t, int) {
                                           if (begin % 3 == 0) throw std::logic_error("x");
                                       }),
                     std::logic_error);
        expect_exact_cover(pool, 999, 7);
    }
}

TEST(ThreadPool, ThousandsOfSmallJobs) {
    for (int threads : {2, 3, 8}) {
        ThreadPool pool(threads);
        int64_t total = 0;
        for (int job = 0; job < 2000; ++job) {
            const int64_t n = 1 + job % 37;
            std::atomic<int64_t> sum{0};
            pool.parallel_for(n, 1 + job % 5, [&](int64_t begin, int64_t end, int) {
                for (int64_t i = begin; i < end; ++i) sum.fetch_add(i + 1);
            });
            ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "job " << job << " threads " << threads;
            total += sum.load();
        }
        EXPECT_GT(total, 0);
    }
}

TEST(ThreadPool, DestroyedWhileIdle) {
    for (int round = 0; round < 20; ++round) {
        for (int threads = 1; threads <= 8; ++threads) {
            auto pool = std::make_unique<ThreadPool>(threads);
            if (round % 2 == 1) expect_exact_cover(*pool, 100, 3);
            pool.reset();  // joins its workers; must not hang
        }
    }
}

}  // namespace
}  // namespace edgeq
