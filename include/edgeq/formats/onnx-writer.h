// Writing ONNX models (protobuf through libonnx's generated schema) with their weights in an
// external data file, streamed: the graph's nodes and small constants stay in memory, the large
// initializers go to the data file as they are produced.
//
//   OnnxWriter out("dir/model.onnx", {.opset = 17});
//   out.add_input("input_ids", OnnxType::int64, {"batch", "seq"});
//   std::string w = out.add_initializer("w", OnnxType::float32, {4, 8}, [&](auto sink) {
//       sink(bytes_of_w);                    // any chunking; exactly 4 * 8 * 4 bytes in all
//   });
//   std::string y = out.node("MatMul", {"x", w});
//   out.add_output(y, "logits", OnnxType::float32, {"batch", "seq", 8});
//   out.finish();                            // model.onnx and model.onnx.data renamed into place
//
// Nothing appears at the target paths until finish() succeeds; the destructor removes the
// temporary files of a writer that did not finish.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace edgeq {

// ONNX's TensorProto element types (the values are the schema's).
enum class OnnxType : int32_t {
    float32 = 1,
    uint8 = 2,
    int8 = 3,
    int32 = 6,
    int64 = 7,
    boolean = 9,
    float16 = 10,
};

// One dimension of a graph input or output: a size or a symbolic name.
using OnnxDim = std::variant<int64_t, std::string>;

struct OnnxAttr {
    std::string name;
    std::variant<int64_t, float, std::string, std::vector<int64_t>> value;
};

struct OnnxWriterOptions {
    int64_t opset = 17;    // of the default domain
    int64_t ms_opset = 0;  // of com.microsoft when > 0 (ONNX Runtime's contrib ops)
    std::string producer = "edgeq";
    uint64_t inline_limit_bytes = 1024;  // initializers up to this size stay in model.onnx
};

class OnnxWriter {
  public:
    // Writes `onnx_path` and `onnx_path` + ".data" (the external data file).
    OnnxWriter(std::string onnx_path, OnnxWriterOptions options);
    ~OnnxWriter();
    OnnxWriter(const OnnxWriter&) = delete;
    OnnxWriter& operator=(const OnnxWriter&) = delete;

    void add_input(const std::string& name, OnnxType type, const std::vector<OnnxDim>& dims);
    // Exposes `value` as the graph output `name` (an Identity node when the names differ).
    void add_output(const std::string& value, const std::string& name, OnnxType type,
                    const std::vector<OnnxDim>& dims);

    // A node; returns the names of its outputs (made unique from `op` unless given).
    std::vector<std::string> nodes(std::string_view op, const std::vector<std::string>& inputs,
                                   int n_outputs, const std::vector<OnnxAttr>& attrs = {},
                                   std::string_view domain = "");
    std::string node(std::string_view op, const std::vector<std::string>& inputs,
                     const std::vector<OnnxAttr>& attrs = {}, std::string_view domain = "") {
        return nodes(op, inputs, 1, attrs, domain)[0];
    }

    // Small constants, in model.onnx.
    std::string constant_i64(const std::vector<int64_t>& values, const std::vector<int64_t>& dims);
    std::string constant_f32(const std::vector<float>& values, const std::vector<int64_t>& dims);
    std::string scalar_f32(float v) { return constant_f32({v}, {}); }
    std::string scalar_i64(int64_t v) { return constant_i64({v}, {}); }

    // An initializer whose bytes `fill` streams through the sink it is given (in order, any
    // chunking, exactly the tensor's size); large ones go to the external data file.
    using Sink = std::function<void(std::span<const uint8_t>)>;
    std::string add_initializer(const std::string& name, OnnxType type,
                                const std::vector<int64_t>& dims,
                                const std::function<void(const Sink&)>& fill);

    // A fresh value name with the given stem.
    std::string unique(std::string_view stem);

    // Serializes the graph and renames both files into place.
    void finish();

    uint64_t data_bytes() const { return data_offset_; }

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    uint64_t data_offset_ = 0;
};

// Bytes per element of `type`.
size_t onnx_type_size(OnnxType type);

}  // namespace edgeq
