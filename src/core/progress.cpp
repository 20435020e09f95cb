#include "edgeq/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace edgeq {
namespace {

std::atomic<bool> g_bar_on_screen{false};

std::string format_duration(double seconds) {
    const int s = static_cast<int>(seconds + 0.5);
    char text[32];
    if (s >= 3600) {
        std::snprintf(text, sizeof(text), "%dh%02dm", s / 3600, s % 3600 / 60);
    } else if (s >= 60) {
        std::snprintf(text, sizeof(text), "%dm%02ds", s / 60, s % 60);
    } else {
        std::snprintf(text, sizeof(text), "%ds", s);
    }
    return text;
}

}  // namespace

bool Progress::enabled() {
    const char* env = std::getenv("EDGEQ_PROGRESS");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    return ::isatty(STDERR_FILENO) == 1;
}

void Progress::clear_line() {
    if (g_bar_on_screen.exchange(false)) std::fputs("\r\033[K", stderr);
}

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(std::max<uint64_t>(total, 1)), visible_(enabled()) {
    start_ = std::chrono::steady_clock::now();
    last_draw_ = start_ - std::chrono::seconds(1);
    if (visible_) draw(false);
}

Progress::~Progress() {
    finish();
}

void Progress::advance(uint64_t n) {
    done_.fetch_add(n, std::memory_order_relaxed);
    if (!visible_) return;
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || finished_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(false);
}

void Progress::set_detail(const std::string& detail) {
    std::lock_guard<std::mutex> lock(mutex_);
    detail_ = detail;
}

void Progress::finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (!visible_) return;
    done_ = total_;
    detail_.clear();
    draw(true);
}

void Progress::draw(bool final) {
    constexpr int k_width = 30;
    const uint64_t done = std::min<uint64_t>(done_.load(std::memory_order_relaxed), total_);
    const double fraction = static_cast<double>(done) / static_cast<double>(total_);
    const int filled = static_cast<int>(fraction * k_width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(k_width - filled), '.');
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::string eta;
    if (final) {
        eta = format_duration(elapsed);
    } else if (fraction > 0.01 && elapsed > 1.0) {
        eta = "eta " + format_duration(elapsed * (1.0 - fraction) / fraction);
    }
    std::fprintf(stderr, "\r\033[K%s [%s] %3d%% %s %s", label_.c_str(), bar.c_str(),
                 static_cast<int>(fraction * 100.0), eta.c_str(), detail_.c_str());
    if (final) {
        std::fputc('\n', stderr);
        g_bar_on_screen = false;
    } else {
        g_bar_on_screen = true;
    }
    std::fflush(stderr);
}

}  // namespace edgeq
