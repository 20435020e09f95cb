#include "edgeq/core/log.h"

#include "edgeq/core/progress.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace edgeq {
namespace {

LogLevel initial_level() {
    const char* env = std::getenv("EDGEQ_LOG");
    if (env == nullptr) return LogLevel::info;
    if (std::strcmp(env, "debug") == 0) return LogLevel::debug;
    if (std::strcmp(env, "warn") == 0) return LogLevel::warn;
    if (std::strcmp(env, "error") == 0) return LogLevel::error;
    return LogLevel::info;
}

std::atomic<LogLevel>& level_storage() {
    static std::atomic<LogLevel> level{initial_level()};
    return level;
}

std::mutex& log_mutex() {
    static std::mutex mutex;
    return mutex;
}

}  // namespace

LogLevel log_level() {
    return level_storage().load(std::memory_order_relaxed);
}

void set_log_level(LogLevel level) {
    level_storage().store(level);
}

void log_message(LogLevel level, const std::string& message) {
    const char* prefix = "";
    if (level == LogLevel::warn) prefix = "warning: ";
    if (level == LogLevel::error) prefix = "error: ";
    std::lock_guard<std::mutex> lock(log_mutex());
    Progress::clear_line();
    std::fprintf(stderr, "%s%s\n", prefix, message.c_str());
}

}  // namespace edgeq
