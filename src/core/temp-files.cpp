#include "edgeq/core/temp-files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "edgeq/core/error.h"

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

void write_file_atomic(const std::string& path, std::string_view content) {
    std::string temp = path + ".tmp-XXXXXX";
    const int fd = ::mkstemp(temp.data());
    if (fd < 0)
        fail("{}: cannot create a temporary file beside it: {}", path, std::strerror(errno));
    register_temp_file(temp);
    const auto give_up = [&](const char* what) {
        const int saved = errno;
        ::close(fd);
        ::unlink(temp.c_str());
        unregister_temp_file(temp);
        fail("{}: cannot {}: {}", path, what, std::strerror(saved));
    };
    size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            give_up("write");
        }
        done += static_cast<size_t>(n);
    }
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
    if (::fsync(fd) != 0) give_up("sync");
    if (::close(fd) != 0) {
        ::unlink(temp.c_str());
        unregister_temp_file(temp);
        fail("{}: cannot close: {}", path, std::strerror(errno));
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const int saved = errno;
        ::unlink(temp.c_str());
        unregister_temp_file(temp);
        fail("{}: cannot rename {} into place: {}", path, temp, std::strerror(saved));
    }
    unregister_temp_file(temp);
}

void install_temp_file_cleanup() {
    for (int signal : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal, remove_temp_files_and_die);
}

}  // namespace edgeq
