#include "edgeq/core/mapped-file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

size_t page_size() {
    static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return size;
}

// The page-aligned range that covers [offset, offset + n_bytes) within a mapping of `size`.
std::pair<size_t, size_t> page_range(size_t offset, size_t n_bytes, size_t size) {
    if (offset >= size) return {0, 0};
    const size_t end = std::min(size, offset + std::min(n_bytes, size - offset));
    const size_t begin = offset / page_size() * page_size();
    return {begin, end - begin};
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail("{}: cannot stat: {}", path, std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail("{}: not a regular file", path);
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            fail("{}: cannot map {} bytes: {}", path, size_, std::strerror(err));
        }
        data_ = static_cast<const uint8_t*>(addr);
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    unmap();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        unmap();
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void MappedFile::unmap() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

void MappedFile::advise_sequential(size_t offset, size_t n_bytes) const {
    const auto [begin, length] = page_range(offset, n_bytes, size_);
    if (length > 0) {
        ::madvise(const_cast<uint8_t*>(data_) + begin, length, MADV_SEQUENTIAL);
        ::madvise(const_cast<uint8_t*>(data_) + begin, length, MADV_WILLNEED);
    }
}

void MappedFile::release(size_t offset, size_t n_bytes) const {
    const auto [begin, length] = page_range(offset, n_bytes, size_);
    if (length > 0) ::madvise(const_cast<uint8_t*>(data_) + begin, length, MADV_DONTNEED);
}

void release_mapped_range(const void* data, size_t n_bytes) {
    // Only pages entirely inside the range: a neighbouring tensor may share the edge pages.
    const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
    const uintptr_t first = (begin + page_size() - 1) / page_size() * page_size();
    const uintptr_t last = (begin + n_bytes) / page_size() * page_size();
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

size_t mapped_page_size() {
    return page_size();
}

void populate_mapped_range(const void* data, size_t n_bytes) {
    const uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page_size() * page_size();
    const uintptr_t end = reinterpret_cast<uintptr_t>(data) + n_bytes;
    if (end <= begin) return;
#ifdef MADV_POPULATE_READ
    if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ) == 0) return;
#endif
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);  // older kernels
}

}  // namespace edgeq
