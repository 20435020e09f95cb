// Reading GGUF files (versions 2 and 3), the format of llama.cpp.
//
//   GgufFile file = GgufFile::open("model.gguf");          // maps the file, parses the header
//   file.find("general.architecture")->to_string();        // "llama"
//   for (const GgufTensorInfo& t : file.tensors())
//       use(t.name, t.type, t.shape, file.tensor_data(t));  // pointer into the mapping
//
// Opening costs a parse of the metadata and tensor table, however large the file: tensor data
// is only touched when read. Every field is checked against the file's bounds; anything
// malformed is an Error naming the file, the offset and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgeq/core/mapped-file.h"
#include "edgeq/formats/gguf-value.h"
#include "edgeq/quant/dtype.h"

namespace edgeq {

constexpr uint32_t k_gguf_default_alignment = 32;

struct GgufTensorInfo {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;  // shape[0] is the contiguous dimension (ggml's ne[0])
    uint64_t offset;             // from the start of the data section
    uint64_t n_bytes;

    int64_t n_elements() const;
    int64_t n_rows() const { return shape.empty() || shape[0] == 0 ? 0 : n_elements() / shape[0]; }
};

class GgufFile {
  public:
    // Maps and parses `path`.
    static GgufFile open(const std::string& path);
    // Parses bytes held elsewhere (they must outlive the result); `name` labels errors.
    static GgufFile parse(std::span<const uint8_t> bytes, const std::string& name);

    const std::string& path() const { return name_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return bytes_.size(); }

    // Metadata in file order.
    const GgufMetadata& metadata() const { return metadata_; }
    const GgufValue* find(std::string_view key) const;
    // The value of `key`, or an Error naming the file and key if it is absent.
    const GgufValue& get(std::string_view key) const;
    std::optional<std::string> get_string(std::string_view key) const;
    std::optional<uint64_t> get_uint(std::string_view key) const;

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(std::string_view name) const;
    const uint8_t* tensor_data(const GgufTensorInfo& tensor) const {
        return bytes_.data() + data_offset_ + tensor.offset;
    }
    TensorView view(const GgufTensorInfo& tensor) const {
        return {tensor.name, tensor.type, tensor.shape, tensor_data(tensor), tensor.n_bytes};
    }
    // Drops a tensor's pages from resident memory once it has been read (mapped files only).
    void release(const GgufTensorInfo& tensor) const;

  private:
    GgufFile() = default;
    void parse_all();

    MappedFile mapping_;
    std::span<const uint8_t> bytes_;
    std::string name_;
    uint32_t version_ = 0;
    uint64_t alignment_ = k_gguf_default_alignment;
    uint64_t data_offset_ = 0;
    GgufMetadata metadata_;
    std::vector<GgufTensorInfo> tensors_;
};

}  // namespace edgeq
