// Diagnostics on stderr. Warnings and information go to stderr so that stdout carries only
// a command's result (a table, JSON) and can be piped.
#pragma once

#include <fmt/format.h>

#include <cstdio>

namespace edgeq {

enum class LogLevel { debug, info, warn, error };

// Messages below this level are dropped; EDGEQ_LOG=debug|info|warn|error sets the start value.
LogLevel log_level();
void set_log_level(LogLevel level);

void log_message(LogLevel level, const std::string& message);

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
    if (log_level() <= LogLevel::info) {
        log_message(LogLevel::info, fmt::format(format, std::forward<Args>(args)...));
    }
}

template <typename... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
    if (log_level() <= LogLevel::warn) {
        log_message(LogLevel::warn, fmt::format(format, std::forward<Args>(args)...));
    }
}

template <typename... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
    if (log_level() <= LogLevel::debug) {
        log_message(LogLevel::debug, fmt::format(format, std::forward<Args>(args)...));
    }
}

}  // namespace edgeq
