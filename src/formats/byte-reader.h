// A bounds-checked little-endian reader over a byte span, for the binary parsers. Every read
// that would run past the end throws an Error naming the file, the offset and the field.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "edgeq/core/error.h"

namespace edgeq {

class ByteReader {
  public:
    ByteReader(std::span<const uint8_t> bytes, const std::string& file)
        : bytes_(bytes), file_(file) {}

    uint64_t offset() const { return offset_; }
    uint64_t remaining() const { return bytes_.size() - offset_; }
    const std::string& file() const { return file_; }

    void need(uint64_t n, const char* what) const {
        if (n > remaining()) {
            fail("{}: offset {}: file ends while reading {} ({} bytes needed, {} left)", file_,
                 offset_, what, n, remaining());
        }
    }

    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, bytes_.data() + offset_, sizeof(T));
        offset_ += sizeof(T);
        return v;
    }

    std::string read_string(const char* what) {
        const uint64_t at = offset_;
        const uint64_t length = read<uint64_t>(what);
        if (length > remaining()) {
            fail("{}: offset {}: {} claims {} bytes but only {} remain", file_, at, what, length,
                 remaining());
        }
        std::string s(reinterpret_cast<const char*>(bytes_.data() + offset_), length);
        offset_ += length;
        return s;
    }

    void read_bytes(uint8_t* dst, uint64_t n, const char* what) {
        need(n, what);
        if (n > 0) std::memcpy(dst, bytes_.data() + offset_, n);
        offset_ += n;
    }

    void skip(uint64_t n, const char* what) {
        need(n, what);
        offset_ += n;
    }

  private:
    std::span<const uint8_t> bytes_;
    std::string file_;
    uint64_t offset_ = 0;
};

}  // namespace edgeq
