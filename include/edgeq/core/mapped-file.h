// Read-only memory-mapped files. Opening maps the whole file (no read), so opening a
// multi-gigabyte model costs a system call, and pages come in as they are touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace edgeq {

class MappedFile {
  public:
    MappedFile() = default;
    // Maps `path` read-only. Throws edgeq::Error naming the path if it cannot be opened.
    explicit MappedFile(const std::string& path);
    ~MappedFile();

    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    const std::string& path() const { return path_; }

    // Hints that [offset, offset + n_bytes) will be read sequentially soon.
    void advise_sequential(size_t offset, size_t n_bytes) const;
    // Drops the pages of [offset, offset + n_bytes) from this process's resident memory; the
    // data stays readable (it is paged in again from the file if touched).
    void release(size_t offset, size_t n_bytes) const;

  private:
    void unmap();

    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// Drops the whole pages inside [data, data + n_bytes) of any read-only file mapping from this
// process's resident memory (they are paged in again if touched).
void release_mapped_range(const void* data, size_t n_bytes);

// The size of a page of the file mappings.
size_t mapped_page_size();

// Maps in the pages of [data, data + n_bytes) of a file mapping in one call (fewer faults when
// the whole range is read next); only a hint.
void populate_mapped_range(const void* data, size_t n_bytes);

}  // namespace edgeq
