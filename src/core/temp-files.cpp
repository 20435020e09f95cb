#include "edgeq/core/temp-files.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

namespace edgeq {
namespace {

constexpr int k_slots = 16;
constexpr size_t k_max_path = 4096;

// The handler reads these without locks: a slot's path is complete before `used` is set.
struct Slot {
    std::atomic<bool> used{false};
    char path[k_max_path];
};

Slot g_slots[k_slots];
std::mutex g_mutex;

extern "C" void remove_temp_files_and_die(int signal) {
    for (Slot& slot : g_slots) {
        if (slot.used.load()) ::unlink(slot.path);  // unlink is async-signal-safe
    }
    std::signal(signal, SIG_DFL);
    std::raise(signal);
}

}  // namespace

void register_temp_file(const std::string& path) {
    if (path.size() >= k_max_path) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    for (Slot& slot : g_slots) {
        if (!slot.used.load()) {
            std::memcpy(slot.path, path.c_str(), path.size() + 1);
            slot.used.store(true);
            return;
        }
    }
}

void unregister_temp_file(const std::string& path) {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (Slot& slot : g_slots) {
        if (slot.used.load() && path == slot.path) slot.used.store(false);
    }
}

void install_temp_file_cleanup() {
    for (int signal : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal, remove_temp_files_and_die);
}

}  // namespace edgeq
