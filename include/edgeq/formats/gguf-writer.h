// Writing GGUF files (version 3) without holding tensor data: metadata and the tensor table
// are declared first, then each tensor's bytes are streamed in order.
//
//   GgufWriter out("model-q4.gguf");
//   out.set("general.architecture", GgufValue::make_string("llama"));
//   out.add_tensor("token_embd.weight", GgmlType::Q4_K, {2048, 32000});
//   out.write_header();
//   out.write(bytes_of_first_chunk); out.write(...);   // any chunking, in tensor order
//   out.finish();                                     // renames the temporary file into place
//
// Nothing appears at the target path until finish() succeeds: the data goes to a temporary
// file beside it, which the destructor removes if the writer did not finish.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/formats/gguf-value.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/quant/dtype.h"

namespace edgeq {

class GgufWriter {
  public:
    explicit GgufWriter(std::string path, uint32_t alignment = k_gguf_default_alignment);
    ~GgufWriter();
    GgufWriter(const GgufWriter&) = delete;
    GgufWriter& operator=(const GgufWriter&) = delete;

    // Sets a metadata value: replaces the key in place if present, otherwise appends it.
    void set(const std::string& key, GgufValue value);
    void remove(std::string_view key);
    const GgufMetadata& metadata() const { return metadata_; }

    // Declares the next tensor; shape[0] is the contiguous dimension. Returns its index.
    size_t add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> shape);
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

    // Writes the header, metadata and tensor table; after it, only tensor data may follow.
    void write_header();
    // Appends bytes to the current tensor, moving on to the next when one is complete.
    void write(std::span<const uint8_t> bytes);
    // Checks that every tensor's data was written, syncs, and renames into place.
    void finish();

    const std::string& path() const { return path_; }
    uint64_t bytes_written() const { return n_written_; }

  private:
    void put(const void* data, size_t n);
    void put_string(const std::string& s);
    void put_value(const GgufValue& value);
    void put_padding(uint64_t n);
    void flush();

    std::string path_;
    std::string temp_path_;
    int fd_ = -1;
    uint32_t alignment_;
    bool header_written_ = false;
    bool finished_ = false;
    GgufMetadata metadata_;
    std::vector<GgufTensorInfo> tensors_;
    uint64_t data_size_ = 0;  // bytes of the data section, padding included

    size_t current_ = 0;            // tensor being written
    uint64_t current_written_ = 0;  // bytes of it so far
    uint64_t n_written_ = 0;
    std::vector<uint8_t> buffer_;
};

}  // namespace edgeq
