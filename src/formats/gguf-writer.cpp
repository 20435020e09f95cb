#include "edgeq/formats/gguf-writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "edgeq/core/temp-files.h"

namespace edgeq {
namespace {

constexpr uint32_t k_magic = 0x46554747;
constexpr uint32_t k_version = 3;
constexpr size_t k_buffer_size = 1 << 20;

uint64_t align_up(uint64_t n, uint64_t alignment) {
    return (n + alignment - 1) / alignment * alignment;
}

}  // namespace

GgufWriter::GgufWriter(std::string path, uint32_t alignment)
    : path_(std::move(path)), alignment_(alignment) {
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
        fail("{}: alignment {} is not a power of two", path_, alignment_);
    }
    std::string pattern = path_ + ".tmp-XXXXXX";
    fd_ = ::mkstemp(pattern.data());
    if (fd_ < 0)
        fail("{}: cannot create a temporary file beside it: {}", path_, std::strerror(errno));
    temp_path_ = pattern;
    register_temp_file(temp_path_);
    buffer_.reserve(k_buffer_size);
}

GgufWriter::~GgufWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!finished_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
    unregister_temp_file(temp_path_);
}

void GgufWriter::set(const std::string& key, GgufValue value) {
    if (header_written_) fail("{}: metadata '{}' set after the header was written", path_, key);
    for (auto& [k, v] : metadata_) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::remove(std::string_view key) {
    std::erase_if(metadata_, [&](const auto& kv) { return kv.first == key; });
}

size_t GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> shape) {
    if (header_written_) fail("{}: tensor '{}' added after the header was written", path_, name);
    if (shape.empty() || shape.size() > 4)
        fail("{}: tensor '{}' has {} dimensions, expected 1 to 4", path_, name, shape.size());
    for (const GgufTensorInfo& t : tensors_) {
        if (t.name == name) fail("{}: tensor '{}' added twice", path_, name);
    }
    const DType& dt = dtype(type);
    if (shape[0] % dt.block_size != 0) {
        fail("{}: tensor '{}': rows of {} values are not whole {} blocks", path_, name, shape[0],
             dt.name);
    }
    GgufTensorInfo t{name, type, std::move(shape), data_size_, 0};
    for (int64_t d : t.shape) {
        if (d < 0) fail("{}: tensor '{}' has a negative dimension", path_, name);
    }
    t.n_bytes = static_cast<uint64_t>(t.n_elements() / dt.block_size) * dt.type_size;
    data_size_ += align_up(t.n_bytes, alignment_);
    tensors_.push_back(std::move(t));
    return tensors_.size() - 1;
}

void GgufWriter::put(const void* data, size_t n) {
    n_written_ += n;
    if (buffer_.size() + n > k_buffer_size) flush();
    if (n >= k_buffer_size) {
        const auto* p = static_cast<const uint8_t*>(data);
        while (n > 0) {
            const ssize_t w = ::write(fd_, p, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                fail("{}: write failed: {}", temp_path_, std::strerror(errno));
            }
            p += w;
            n -= static_cast<size_t>(w);
        }
        return;
    }
    const auto* p = static_cast<const uint8_t*>(data);
    buffer_.insert(buffer_.end(), p, p + n);
}

void GgufWriter::flush() {
    const uint8_t* p = buffer_.data();
    size_t n = buffer_.size();
    while (n > 0) {
        const ssize_t w = ::write(fd_, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail("{}: write failed: {}", temp_path_, std::strerror(errno));
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    buffer_.clear();
}

void GgufWriter::put_string(const std::string& s) {
    const uint64_t n = s.size();
    put(&n, sizeof(n));
    put(s.data(), s.size());
}

void GgufWriter::put_value(const GgufValue& value) {
    switch (value.type()) {
        case GgufType::string:
            put_string(value.to_string());
            return;
        case GgufType::array: {
            const uint32_t element = static_cast<uint32_t>(value.element_type());
            const uint64_t n = value.array_size();
            put(&element, sizeof(element));
            put(&n, sizeof(n));
            if (value.element_type() == GgufType::string) {
                for (uint64_t i = 0; i < n; ++i) put_string(value.string_at(i));
            } else if (value.element_type() == GgufType::array) {
                for (uint64_t i = 0; i < n; ++i) put_value(value.element_at(i));
            } else {
                const auto bytes = value.element_bytes();
                put(bytes.data(), bytes.size());
            }
            return;
        }
        case GgufType::boolean: {
            const uint8_t b = value.to_bool() ? 1 : 0;
            put(&b, 1);
            return;
        }
        case GgufType::float32: {
            const float f = static_cast<float>(value.to_double());
            put(&f, sizeof(f));
            return;
        }
        case GgufType::float64: {
            const double d = value.to_double();
            put(&d, sizeof(d));
            return;
        }
        default: {
            // Integers: the low bytes of the two's complement value, little-endian.
            const uint64_t bits = value.type() == GgufType::uint64
                                      ? value.to_uint()
                                      : static_cast<uint64_t>(value.to_int());
            put(&bits, gguf_type_size(value.type()));
            return;
        }
    }
}

void GgufWriter::put_padding(uint64_t n) {
    static const uint8_t zeros[64] = {};
    while (n > 0) {
        const uint64_t chunk = std::min<uint64_t>(n, sizeof(zeros));
        put(zeros, chunk);
        n -= chunk;
    }
}

void GgufWriter::write_header() {
    if (header_written_) fail("{}: header written twice", path_);
    if (alignment_ != k_gguf_default_alignment ||
        metadata_.end() != std::find_if(metadata_.begin(), metadata_.end(), [](const auto& kv) {
            return kv.first == "general.alignment";
        })) {
        set("general.alignment", GgufValue::make_uint32(alignment_));
    }
    header_written_ = true;
    const uint64_t n_tensors = tensors_.size();
    const uint64_t n_kv = metadata_.size();
    put(&k_magic, sizeof(k_magic));
    put(&k_version, sizeof(k_version));
    put(&n_tensors, sizeof(n_tensors));
    put(&n_kv, sizeof(n_kv));
    for (const auto& [key, value] : metadata_) {
        put_string(key);
        const uint32_t type = static_cast<uint32_t>(value.type());
        put(&type, sizeof(type));
        put_value(value);
    }
    for (const GgufTensorInfo& t : tensors_) {
        put_string(t.name);
        const uint32_t n_dims = static_cast<uint32_t>(t.shape.size());
        put(&n_dims, sizeof(n_dims));
        for (int64_t d : t.shape) {
            const uint64_t dim = static_cast<uint64_t>(d);
            put(&dim, sizeof(dim));
        }
        const uint32_t type = static_cast<uint32_t>(t.type);
        put(&type, sizeof(type));
        put(&t.offset, sizeof(t.offset));
    }
    put_padding(align_up(n_written_, alignment_) - n_written_);
    current_ = 0;
    current_written_ = 0;
}

void GgufWriter::write(std::span<const uint8_t> bytes) {
    if (!header_written_) fail("{}: tensor data written before the header", path_);
    while (!bytes.empty()) {
        if (current_ >= tensors_.size())
            fail("{}: more tensor data than the declared tensors hold", path_);
        const GgufTensorInfo& t = tensors_[current_];
        const uint64_t n = std::min<uint64_t>(bytes.size(), t.n_bytes - current_written_);
        put(bytes.data(), n);
        current_written_ += n;
        bytes = bytes.subspan(n);
        if (current_written_ == t.n_bytes) {
            put_padding(align_up(t.n_bytes, alignment_) - t.n_bytes);
            ++current_;
            current_written_ = 0;
        }
    }
}

void GgufWriter::finish() {
    if (!header_written_) write_header();
    // Zero-sized tensors need no bytes; step over them.
    while (current_ < tensors_.size() && tensors_[current_].n_bytes == 0 && current_written_ == 0)
        ++current_;
    if (current_ != tensors_.size()) {
        fail("{}: tensor '{}' is incomplete ({} of {} bytes written)", path_,
             tensors_[current_].name, current_written_, tensors_[current_].n_bytes);
    }
    flush();
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd_, 0666 & ~mask);
    if (::fsync(fd_) != 0) fail("{}: cannot sync: {}", temp_path_, std::strerror(errno));
    if (::close(fd_) != 0) {
        fd_ = -1;
        fail("{}: cannot close: {}", temp_path_, std::strerror(errno));
    }
    fd_ = -1;
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        fail("{}: cannot rename {} into place: {}", path_, temp_path_, std::strerror(errno));
    }
    finished_ = true;
}

}  // namespace edgeq
