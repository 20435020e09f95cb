// Reading and writing safetensors files, the tensor format of Hugging Face checkpoints.
//
//   SafetensorsFile file = SafetensorsFile::open("model.safetensors");  // maps, parses the header
//   for (const SafetensorsTensor& t : file.tensors())       // in order of file offset
//       use(t.name, t.dtype, t.shape, t.data);              // data points into the mapping
//   std::vector<float> w = to_float(file.tensor("lm_head.weight"));
//
//   SafetensorsWriter out("out.safetensors");               // a temporary file beside it
//   out.add_metadata("format", "pt");
//   out.add_tensor("w", SafetensorsDType::F16, {4, 8});     // declare every tensor first,
//   out.write(bytes);                                       // then stream their bytes in order,
//   out.finish();                                           // then fsync and rename into place
//
// Layout: an 8-byte little-endian length N, N bytes of UTF-8 JSON (an object mapping each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
// "__metadata__" object of strings), then the data; offsets count from the first byte after
// the header. Row-major shapes, little-endian values, no alignment required of the data.
//
// The reader checks everything against the file's bounds and rejects anything malformed with
// one Error naming the file, the tensor or field and, where it helps, the offset. It accepts
// gaps between tensors and bytes after the last one (the reference reader does not); it
// rejects duplicate JSON keys (the reference keeps one of them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/core/half.h"
#include "edgeq/core/mapped-file.h"

namespace edgeq {

// Element types, as the header spells them. The F8 types and U16/U32/U64 are read and written
// as raw bytes; every type converts to float.
enum class SafetensorsDType : uint8_t {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    BOOL,
    F8_E4M3,  // OCP E4M3FN: bias 7, no infinities, S.1111.111 is NaN, max 448
    F8_E5M2,  // OCP E5M2: bias 15, IEEE-style infinities and NaNs (the top byte of an F16)
};

// The name in the header ("BF16", "F8_E4M3").
std::string_view safetensors_dtype_name(SafetensorsDType dtype);
// The type for a header name (exact, case-sensitive), or nullopt.
std::optional<SafetensorsDType> find_safetensors_dtype(std::string_view name);
// Bytes per element.
size_t safetensors_dtype_size(SafetensorsDType dtype);
// Every type, in enum order.
std::span<const SafetensorsDType> all_safetensors_dtypes();

inline float f8_e4m3_to_fp32(uint8_t b) {
    const uint32_t sign = static_cast<uint32_t>(b & 0x80) << 24;
    const uint32_t exponent = (b >> 3) & 0xf;
    const uint32_t mantissa = b & 0x7;
    if (exponent == 0xf && mantissa == 0x7) return bits_float(sign | 0x7fc00000);  // NaN
    if (exponent != 0) return bits_float(sign | ((exponent + 120) << 23) | (mantissa << 20));
    // Zero or subnormal: mantissa * 2^-9, exact in float.
    const float magnitude = static_cast<float>(mantissa) * bits_float(0x3b000000);  // 2^-9
    return sign != 0 ? -magnitude : magnitude;
}

inline float f8_e5m2_to_fp32(uint8_t b) {
    return fp16_to_fp32(static_cast<uint16_t>(b << 8));
}

struct SafetensorsTensor {
    std::string name;
    SafetensorsDType dtype;
    std::vector<int64_t> shape;  // row-major: the last dimension is contiguous
    int64_t n_elements;          // product of the shape (1 for a scalar)
    uint64_t offset;             // absolute: from the first byte of the file
    uint64_t n_bytes;            // n_elements * safetensors_dtype_size(dtype)
    const uint8_t* data;         // n_bytes bytes inside the file's bytes; may be unaligned

    std::span<const uint8_t> bytes() const { return {data, n_bytes}; }
};

class SafetensorsFile {
  public:
    // Maps and parses `path`; the tensors' data stays in the mapping.
    static SafetensorsFile open(const std::string& path);
    // Parses bytes held elsewhere without copying them (they must outlive the result);
    // `name` labels errors.
    static SafetensorsFile parse(std::span<const uint8_t> bytes, const std::string& name);

    const std::string& path() const { return name_; }
    uint64_t file_size() const { return bytes_.size(); }
    uint64_t header_size() const { return header_size_; }      // N, padding included
    uint64_t data_offset() const { return 8 + header_size_; }  // where data_offsets count from

    // The "__metadata__" strings, ordered by key.
    const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }
    const std::string* find_metadata(std::string_view key) const;

    // Every tensor, in order of file offset.
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
    const SafetensorsTensor* find_tensor(std::string_view name) const;
    // The tensor called `name`, or an Error naming the file and the tensor.
    const SafetensorsTensor& tensor(std::string_view name) const;

    // Hints that a tensor is about to be read (mapped files only).
    void advise_sequential(const SafetensorsTensor& tensor) const;
    // Drops a tensor's pages from resident memory once it has been read (mapped files only).
    void release(const SafetensorsTensor& tensor) const;

  private:
    SafetensorsFile() = default;
    void parse_all();

    MappedFile mapping_;
    std::span<const uint8_t> bytes_;
    std::string name_;
    uint64_t header_size_ = 0;
    std::map<std::string, std::string, std::less<>> metadata_;
    std::vector<SafetensorsTensor> tensors_;
    std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
};

// Converts elements [first, first + n) of a tensor to float: integers and BOOL by value, F64
// rounded to nearest (out of range to infinity). An Error if the range is not in the tensor.
void to_float(const SafetensorsTensor& tensor, int64_t first, int64_t n, float* dst);
// Every element of a tensor as float.
std::vector<float> to_float(const SafetensorsTensor& tensor);

// The raw 16-bit words of an F16 or BF16 tensor, without a copy (convert them with
// fp16_to_fp32_row / bf16_to_fp32_row). An Error for another dtype, or if the data is not
// 2-byte aligned in memory (files whose header length is odd; edgeq's and the reference
// writer keep data 8-byte aligned).
std::span<const uint16_t> half_words(const SafetensorsTensor& tensor);

// Writes a safetensors file in one pass: declare every tensor (and any metadata), then write
// the tensors' bytes in declaration order, each in as many chunks as suits, then finish().
// The data starts at a multiple of 8 (the header is padded with spaces) and the tensors lie
// back to back in declaration order.
//
// The file is written to a temporary file beside `path` and renamed over `path` by finish(),
// after an fsync: until then `path` is untouched. Every Error the writer throws (a wrong
// chunk size, a duplicate name, a full disk) leaves it failed: the temporary file is removed
// and later calls throw. Destroying it unfinished removes the temporary file too.
class SafetensorsWriter {
  public:
    // Creates the temporary file; an Error if the directory cannot take it.
    explicit SafetensorsWriter(std::string path);
    ~SafetensorsWriter();

    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

    // Adds (or replaces) a "__metadata__" entry; only before the first write().
    void add_metadata(const std::string& key, const std::string& value);
    // Declares the next tensor; only before the first write(). An Error for a name already
    // declared, "__metadata__", a name that is not UTF-8, or a negative or overflowing shape.
    void add_tensor(const std::string& name, SafetensorsDType dtype, std::vector<int64_t> shape);

    // Appends the next bytes of the current tensor (the first write also writes the header).
    // An Error if the chunk is longer than what remains of the current tensor.
    void write(std::span<const uint8_t> chunk);
    void write(const void* data, size_t n_bytes) {
        write(std::span<const uint8_t>(static_cast<const uint8_t*>(data), n_bytes));
    }

    // Checks that every tensor got all its bytes, flushes, fsyncs and renames the file into
    // place. An Error (and nothing at `path`) if a tensor is incomplete.
    void finish();

    const std::string& path() const { return path_; }
    const std::string& temp_path() const { return temp_path_; }
    bool finished() const { return state_ == State::finished; }

  private:
    struct Declared {
        std::string name;
        SafetensorsDType dtype;
        std::vector<int64_t> shape;
        uint64_t n_bytes;
    };
    enum class State { declaring, writing, finished, failed };

    template <typename F>
    void guarded(F&& body);
    void check_usable(const char* operation) const;
    void begin_data();
    void skip_empty_tensors();
    void append(const uint8_t* data, size_t n_bytes);
    void flush();
    void abandon() noexcept;

    std::string path_;
    std::string temp_path_;
    int fd_ = -1;
    State state_ = State::declaring;
    std::map<std::string, std::string> metadata_;
    std::vector<Declared> tensors_;
    std::map<std::string, size_t, std::less<>> names_;
    uint64_t total_bytes_ = 0;
    size_t current_ = 0;           // the tensor that write() fills
    uint64_t current_done_ = 0;    // bytes of it written so far
    std::vector<uint8_t> buffer_;  // coalesces small chunks
};

}  // namespace edgeq
