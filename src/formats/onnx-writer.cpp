#include "edgeq/formats/onnx-writer.h"

#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "edgeq/core/error.h"
#include "edgeq/core/temp-files.h"

namespace edgeq {
namespace {

// Large initializers start on page boundaries so that ONNX Runtime can map them in place.
constexpr uint64_t k_data_alignment = 4096;

// A temporary file beside `path`, removed unless kept.
class TempFile {
  public:
    explicit TempFile(const std::string& path) : path_(path) {
        std::string pattern = path + ".tmp-XXXXXX";
        fd_ = ::mkstemp(pattern.data());
        if (fd_ < 0) fail("{}: cannot create a temporary file: {}", path, std::strerror(errno));
        temp_ = pattern;
        register_temp_file(temp_);
    }
    ~TempFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!kept_) ::unlink(temp_.c_str());
        unregister_temp_file(temp_);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    void write(const void* data, size_t n) {
        const auto* p = static_cast<const uint8_t*>(data);
        while (n > 0) {
            const ssize_t done = ::write(fd_, p, n);
            if (done < 0) {
                if (errno == EINTR) continue;
                fail("{}: write failed: {}", temp_, std::strerror(errno));
            }
            p += done;
            n -= static_cast<size_t>(done);
        }
    }
    void keep() {
        const mode_t mask = ::umask(0);
        ::umask(mask);
        ::fchmod(fd_, 0666 & ~mask);
        if (::fsync(fd_) != 0) fail("{}: cannot sync: {}", temp_, std::strerror(errno));
        if (::close(fd_) != 0) fail("{}: cannot close: {}", temp_, std::strerror(errno));
        fd_ = -1;
        if (std::rename(temp_.c_str(), path_.c_str()) != 0)
            fail("{}: cannot rename into place: {}", path_, std::strerror(errno));
        kept_ = true;
    }

  private:
    std::string path_, temp_;
    int fd_ = -1;
    bool kept_ = false;
};

void set_dims(onnx::TensorProto& t, const std::vector<int64_t>& dims) {
    for (int64_t d : dims) t.add_dims(d);
}

}  // namespace

size_t onnx_type_size(OnnxType type) {
    switch (type) {
        case OnnxType::float32:
        case OnnxType::int32:
            return 4;
        case OnnxType::int64:
            return 8;
        case OnnxType::float16:
            return 2;
        case OnnxType::uint8:
        case OnnxType::int8:
        case OnnxType::boolean:
            return 1;
    }
    return 0;
}

struct OnnxWriter::Impl {
    Impl(const std::string& path, const OnnxWriterOptions& o)
        : onnx_path(path),
          data_name(std::filesystem::path(path).filename().string() + ".data"),
          options(o),
          data(path + ".data"),
          onnx(path) {}

    std::string onnx_path, data_name;
    OnnxWriterOptions options;
    TempFile data;
    TempFile onnx;
    onnx::ModelProto model;
    std::unordered_map<std::string, int> counters;
    bool finished = false;

    onnx::GraphProto& graph() { return *model.mutable_graph(); }
};

OnnxWriter::OnnxWriter(std::string onnx_path, OnnxWriterOptions options)
    : impl_(std::make_unique<Impl>(onnx_path, options)) {
    onnx::ModelProto& m = impl_->model;
    m.set_ir_version(8);
    m.set_producer_name(options.producer);
    m.set_producer_version("0.1.0");
    onnx::OperatorSetIdProto* ai = m.add_opset_import();
    ai->set_domain("");
    ai->set_version(options.opset);
    if (options.ms_opset > 0) {
        onnx::OperatorSetIdProto* ms = m.add_opset_import();
        ms->set_domain("com.microsoft");
        ms->set_version(options.ms_opset);
    }
    impl_->graph().set_name("edgeq");
}

OnnxWriter::~OnnxWriter() = default;

std::string OnnxWriter::unique(std::string_view stem) {
    const int n = impl_->counters[std::string(stem)]++;
    return n == 0 ? std::string(stem) : fmt::format("{}_{}", stem, n);
}

namespace {

void set_value_info(onnx::ValueInfoProto& v, const std::string& name, OnnxType type,
                    const std::vector<OnnxDim>& dims) {
    v.set_name(name);
    onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
    t->set_elem_type(static_cast<int32_t>(type));
    onnx::TensorShapeProto* shape = t->mutable_shape();
    for (const OnnxDim& d : dims) {
        onnx::TensorShapeProto_Dimension* dim = shape->add_dim();
        if (const auto* n = std::get_if<int64_t>(&d))
            dim->set_dim_value(*n);
        else
            dim->set_dim_param(std::get<std::string>(d));
    }
}

}  // namespace

void OnnxWriter::add_input(const std::string& name, OnnxType type,
                           const std::vector<OnnxDim>& dims) {
    set_value_info(*impl_->graph().add_input(), name, type, dims);
}

void OnnxWriter::add_output(const std::string& value, const std::string& name, OnnxType type,
                            const std::vector<OnnxDim>& dims) {
    if (value != name) {
        onnx::NodeProto* n = impl_->graph().add_node();
        n->set_op_type("Identity");
        n->set_name(unique(fmt::format("/output/{}", name)));
        n->add_input(value);
        n->add_output(name);
    }
    set_value_info(*impl_->graph().add_output(), name, type, dims);
}

std::vector<std::string> OnnxWriter::nodes(std::string_view op,
                                           const std::vector<std::string>& inputs, int n_outputs,
                                           const std::vector<OnnxAttr>& attrs,
                                           std::string_view domain) {
    onnx::NodeProto* n = impl_->graph().add_node();
    n->set_op_type(std::string(op));
    if (!domain.empty()) n->set_domain(std::string(domain));
    const std::string name = unique(fmt::format("/{}", op));
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    std::vector<std::string> outputs;
    for (int i = 0; i < n_outputs; ++i) {
        outputs.push_back(fmt::format("{}/out{}", name, i));
        n->add_output(outputs.back());
    }
    for (const OnnxAttr& a : attrs) {
        onnx::AttributeProto* p = n->add_attribute();
        p->set_name(a.name);
        if (const auto* i = std::get_if<int64_t>(&a.value)) {
            p->set_type(onnx::AttributeProto::INT);
            p->set_i(*i);
        } else if (const auto* f = std::get_if<float>(&a.value)) {
            p->set_type(onnx::AttributeProto::FLOAT);
            p->set_f(*f);
        } else if (const auto* s = std::get_if<std::string>(&a.value)) {
            p->set_type(onnx::AttributeProto::STRING);
            p->set_s(*s);
        } else {
            p->set_type(onnx::AttributeProto::INTS);
            for (int64_t v : std::get<std::vector<int64_t>>(a.value)) p->add_ints(v);
        }
    }
    return outputs;
}

std::string OnnxWriter::constant_i64(const std::vector<int64_t>& values,
                                     const std::vector<int64_t>& dims) {
    onnx::TensorProto* t = impl_->graph().add_initializer();
    t->set_name(unique("/const_i64"));
    t->set_data_type(onnx::TensorProto::INT64);
    set_dims(*t, dims);
    for (int64_t v : values) t->add_int64_data(v);
    return t->name();
}

std::string OnnxWriter::constant_f32(const std::vector<float>& values,
                                     const std::vector<int64_t>& dims) {
    onnx::TensorProto* t = impl_->graph().add_initializer();
    t->set_name(unique("/const_f32"));
    t->set_data_type(onnx::TensorProto::FLOAT);
    set_dims(*t, dims);
    for (float v : values) t->add_float_data(v);
    return t->name();
}

std::string OnnxWriter::add_initializer(const std::string& name, OnnxType type,
                                        const std::vector<int64_t>& dims,
                                        const std::function<void(const Sink&)>& fill) {
    uint64_t n_bytes = onnx_type_size(type);
    for (int64_t d : dims) n_bytes *= static_cast<uint64_t>(d);
    onnx::TensorProto* t = impl_->graph().add_initializer();
    t->set_name(unique(name));
    t->set_data_type(static_cast<int32_t>(type));
    set_dims(*t, dims);
    uint64_t written = 0;
    if (n_bytes <= impl_->options.inline_limit_bytes) {
        std::string* raw = t->mutable_raw_data();
        fill([&](std::span<const uint8_t> bytes) {
            raw->append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            written += bytes.size();
        });
    } else {
        const uint64_t pad =
            (k_data_alignment - data_offset_ % k_data_alignment) % k_data_alignment;
        if (pad > 0) {
            static const uint8_t zeros[k_data_alignment] = {};
            impl_->data.write(zeros, pad);
            data_offset_ += pad;
        }
        const uint64_t offset = data_offset_;
        fill([&](std::span<const uint8_t> bytes) {
            impl_->data.write(bytes.data(), bytes.size());
            written += bytes.size();
        });
        data_offset_ += written;
        t->set_data_location(onnx::TensorProto::EXTERNAL);
        auto add_entry = [&](const char* key, const std::string& value) {
            onnx::StringStringEntryProto* e = t->add_external_data();
            e->set_key(key);
            e->set_value(value);
        };
        add_entry("location", impl_->data_name);
        add_entry("offset", std::to_string(offset));
        add_entry("length", std::to_string(n_bytes));
    }
    if (written != n_bytes)
        fail("internal: initializer '{}' streamed {} bytes, expected {}", t->name(), written,
             n_bytes);
    return t->name();
}

void OnnxWriter::finish() {
    Impl& m = *impl_;
    std::string bytes;
    if (!m.model.SerializeToString(&bytes))
        fail("{}: cannot serialize the ONNX model (over protobuf's 2 GB limit?)", m.onnx_path);
    m.onnx.write(bytes.data(), bytes.size());
    m.data.keep();
    m.onnx.keep();
    m.finished = true;
}

}  // namespace edgeq
