// A progress bar on stderr, drawn only when stderr is a terminal, so that long work shows
// its pace to a person and stays silent in a pipe or a log file.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace edgeq {

class Progress {
  public:
    // `total` is in the units that advance() counts (bytes, tensors, tokens).
    Progress(std::string label, uint64_t total);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Thread-safe; redraws at most ten times a second.
    void advance(uint64_t n);
    void set_detail(const std::string& detail);
    // Draws the bar at 100% and ends its line. Called by the destructor if not before.
    void finish();

    bool visible() const { return visible_; }

    // True when progress bars are drawn: stderr is a terminal and EDGEQ_PROGRESS is not 0.
    static bool enabled();
    // Clears the bar's line so that a log message can be printed; the bar redraws later.
    static void clear_line();

  private:
    void draw(bool final);

    std::string label_;
    std::string detail_;
    uint64_t total_;
    std::atomic<uint64_t> done_{0};
    bool visible_;
    bool finished_ = false;
    std::mutex mutex_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace edgeq
