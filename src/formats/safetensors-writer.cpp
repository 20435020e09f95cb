#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "edgeq/core/error.h"
#include "edgeq/core/temp-files.h"
#include "edgeq/formats/safetensors.h"

namespace edgeq {
namespace {

constexpr size_t k_buffer_bytes = 4 << 20;

// A name nobody else uses, beside the target so that the final rename stays on one file system.
std::string temp_path_for(const std::string& path, int attempt) {
    static std::atomic<uint64_t> counter{0};
    const std::filesystem::path target(path);
    const std::string file_name = target.filename().string();
    const std::filesystem::path dir = target.parent_path();
    const std::string temp =
        fmt::format(".{}.tmp-{}-{}-{}", file_name, ::getpid(), counter++, attempt);
    return dir.empty() ? temp : (dir / temp).string();
}

void write_all(int fd, const uint8_t* data, size_t n_bytes, const std::string& path) {
    while (n_bytes > 0) {
        const ssize_t n = ::write(fd, data, n_bytes);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("{}: cannot write: {}", path, std::strerror(errno));
        }
        data += n;
        n_bytes -= static_cast<size_t>(n);
    }
}

// Makes a rename durable; a failure here cannot undo the rename, so it is not an Error.
void sync_directory(const std::string& path) {
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

}  // namespace

SafetensorsWriter::SafetensorsWriter(std::string path) : path_(std::move(path)) {
    if (path_.empty()) fail("safetensors writer: empty output path");
    for (int attempt = 0; fd_ < 0; ++attempt) {
        temp_path_ = temp_path_for(path_, attempt);
        fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ < 0 && (errno != EEXIST || attempt >= 100)) {
            const int err = errno;
            state_ = State::failed;
            fail("{}: cannot create the temporary file {}: {}", path_, temp_path_,
                 std::strerror(err));
        }
    }
    register_temp_file(temp_path_);
    buffer_.reserve(k_buffer_bytes);
}

SafetensorsWriter::~SafetensorsWriter() {
    if (state_ != State::finished) abandon();
    unregister_temp_file(temp_path_);
}

void SafetensorsWriter::abandon() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        ::unlink(temp_path_.c_str());
    }
    if (state_ != State::finished) state_ = State::failed;
}

// Runs one public operation; any exception from it abandons the file before propagating.
template <typename F>
void SafetensorsWriter::guarded(F&& body) {
    try {
        body();
    } catch (...) {
        abandon();
        throw;
    }
}

void SafetensorsWriter::check_usable(const char* operation) const {
    if (state_ == State::failed) fail("{}: {} after an earlier error", path_, operation);
    if (state_ == State::finished) fail("{}: {} after finish()", path_, operation);
}

void SafetensorsWriter::add_metadata(const std::string& key, const std::string& value) {
    check_usable("add_metadata");
    guarded([&] {
        if (state_ != State::declaring) {
            fail("{}: metadata '{}' added after tensor data was written", path_, key);
        }
        try {
            (void)nlohmann::json(key).dump();
            (void)nlohmann::json(value).dump();
        } catch (const nlohmann::json::exception&) {
            fail("{}: metadata '{}' is not valid UTF-8", path_, key);
        }
        metadata_[key] = value;
    });
}

void SafetensorsWriter::add_tensor(const std::string& name, SafetensorsDType dtype,
                                   std::vector<int64_t> shape) {
    check_usable("add_tensor");
    guarded([&] {
        if (state_ != State::declaring) {
            fail("{}: tensor '{}' declared after tensor data was written", path_, name);
        }
        if (name == "__metadata__") fail("{}: '__metadata__' cannot name a tensor", path_);
        if (names_.contains(name)) fail("{}: tensor '{}' declared twice", path_, name);
        try {
            (void)nlohmann::json(name).dump();
        } catch (const nlohmann::json::exception&) {
            fail("{}: tensor name '{}' is not valid UTF-8", path_, name);
        }
        // As the reader: the non-zero dimensions' product must fit even if another is zero.
        int64_t product = 1;
        bool has_zero = false;
        for (const int64_t d : shape) {
            if (d < 0) fail("{}: tensor '{}' has a negative dimension ({})", path_, name, d);
            if (d == 0) {
                has_zero = true;
            } else if (__builtin_mul_overflow(product, d, &product)) {
                fail("{}: tensor '{}': the shape's product overflows 64 bits", path_, name);
            }
        }
        const int64_t n_elements = has_zero ? 0 : product;
        uint64_t n_bytes = 0;
        if (__builtin_mul_overflow(static_cast<uint64_t>(n_elements), safetensors_dtype_size(dtype),
                                   &n_bytes) ||
            __builtin_add_overflow(total_bytes_, n_bytes, &total_bytes_)) {
            fail("{}: tensor '{}': the data size overflows 64 bits", path_, name);
        }
        names_.emplace(name, tensors_.size());
        tensors_.push_back({name, dtype, std::move(shape), n_bytes});
    });
}

void SafetensorsWriter::begin_data() {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
        nlohmann::ordered_json meta = nlohmann::ordered_json::object();
        for (const auto& [key, value] : metadata_) meta[key] = value;
        header["__metadata__"] = std::move(meta);
    }
    uint64_t offset = 0;
    for (const Declared& t : tensors_) {
        header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + t.n_bytes}}};
        offset += t.n_bytes;
    }
    std::string text = header.dump();
    // The 8-byte length plus the header end at a multiple of 8, so every tensor whose
    // offset is a multiple of its element size is aligned in a mapping.
    text.append((8 - text.size() % 8) % 8, ' ');
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(text.size() >> (8 * i));
    state_ = State::writing;
    append(length, sizeof(length));
    append(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    skip_empty_tensors();
}

void SafetensorsWriter::skip_empty_tensors() {
    while (current_ < tensors_.size() && current_done_ == tensors_[current_].n_bytes) {
        ++current_;
        current_done_ = 0;
    }
}

void SafetensorsWriter::write(std::span<const uint8_t> chunk) {
    check_usable("write");
    guarded([&] {
        if (state_ == State::declaring) begin_data();
        if (chunk.empty()) return;
        if (current_ == tensors_.size()) {
            fail("{}: a chunk of {} bytes written after the last tensor was complete", path_,
                 chunk.size());
        }
        const Declared& t = tensors_[current_];
        const uint64_t left = t.n_bytes - current_done_;
        if (chunk.size() > left) {
            fail("{}: a chunk of {} bytes for tensor '{}', but only {} of its {} bytes remain",
                 path_, chunk.size(), t.name, left, t.n_bytes);
        }
        append(chunk.data(), chunk.size());
        current_done_ += chunk.size();
        skip_empty_tensors();
    });
}

void SafetensorsWriter::append(const uint8_t* data, size_t n_bytes) {
    if (buffer_.size() + n_bytes > k_buffer_bytes) flush();
    if (n_bytes >= k_buffer_bytes) {
        write_all(fd_, data, n_bytes, temp_path_);
    } else {
        buffer_.insert(buffer_.end(), data, data + n_bytes);
    }
}

void SafetensorsWriter::flush() {
    write_all(fd_, buffer_.data(), buffer_.size(), temp_path_);
    buffer_.clear();
}

void SafetensorsWriter::finish() {
    check_usable("finish");
    guarded([&] {
        if (state_ == State::declaring) begin_data();
        if (current_ < tensors_.size()) {
            const Declared& t = tensors_[current_];
            fail("{}: finish() with tensor '{}' at {} of its {} bytes ({} of {} tensors complete)",
                 path_, t.name, current_done_, t.n_bytes, current_, tensors_.size());
        }
        flush();
        if (::fsync(fd_) != 0) fail("{}: cannot fsync: {}", temp_path_, std::strerror(errno));
        const int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0) {
            const int err = errno;
            ::unlink(temp_path_.c_str());
            fail("{}: cannot close: {}", temp_path_, std::strerror(err));
        }
        if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
            const int err = errno;
            ::unlink(temp_path_.c_str());
            fail("{}: cannot rename {} into place: {}", path_, temp_path_, std::strerror(err));
        }
        state_ = State::finished;
        sync_directory(path_);
    });
}

}  // namespace edgeq
