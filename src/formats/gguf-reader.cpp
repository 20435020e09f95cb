#include <algorithm>
#include <limits>
#include <unordered_set>

#include "byte-reader.h"
#include "edgeq/core/error.h"
#include "edgeq/formats/gguf.h"

namespace edgeq {
namespace {

constexpr uint32_t k_magic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int k_max_array_depth = 8;
constexpr uint32_t k_max_dims = 4;  // GGML_MAX_DIMS

GgufValue read_value(ByteReader& in, GgufType type, const std::string& key, int depth);

GgufType read_type(ByteReader& in, const std::string& key) {
    const uint64_t at = in.offset();
    const uint32_t id = in.read<uint32_t>("a value type");
    if (!gguf_type_valid(id))
        fail("{}: offset {}: key '{}' has unknown value type {}", in.file(), at, key, id);
    return static_cast<GgufType>(id);
}

GgufValue read_array(ByteReader& in, const std::string& key, int depth) {
    if (depth >= k_max_array_depth) {
        fail("{}: offset {}: key '{}' nests arrays deeper than {}", in.file(), in.offset(), key,
             k_max_array_depth);
    }
    const GgufType element = read_type(in, key);
    const uint64_t at = in.offset();
    const uint64_t count = in.read<uint64_t>("an array length");
    // Bound the count by what the rest of the file could hold before allocating anything.
    const uint64_t min_size = element == GgufType::string  ? 8
                              : element == GgufType::array ? 12
                                                           : gguf_type_size(element);
    if (count > in.remaining() / min_size) {
        fail("{}: offset {}: key '{}' claims an array of {} {} values, more than the file holds",
             in.file(), at, key, count, gguf_type_name(element));
    }
    if (element == GgufType::string) {
        std::vector<std::string> items;
        items.reserve(count);
        for (uint64_t i = 0; i < count; ++i) items.push_back(in.read_string("an array string"));
        return GgufValue::make_string_array(std::move(items));
    }
    if (element == GgufType::array) {
        std::vector<GgufValue> items;
        items.reserve(count);
        // Each item is an array without its own ARRAY tag: element type, count, elements.
        for (uint64_t i = 0; i < count; ++i) items.push_back(read_array(in, key, depth + 1));
        return GgufValue::make_array_of_arrays(std::move(items));
    }
    const uint64_t n_bytes = count * min_size;
    in.need(n_bytes, "array elements");
    std::vector<uint8_t> bytes(n_bytes);
    in.read_bytes(bytes.data(), n_bytes, "array elements");
    if (element == GgufType::boolean) {
        for (uint64_t i = 0; i < count; ++i) {
            if (bytes[i] > 1)
                fail("{}: key '{}': BOOL array element {} is {}, expected 0 or 1", in.file(), key,
                     i, bytes[i]);
        }
    }
    return GgufValue::make_array(element, std::move(bytes));
}

GgufValue read_value(ByteReader& in, GgufType type, const std::string& key, int depth) {
    switch (type) {
        case GgufType::uint8:
            return GgufValue::make_uint8(in.read<uint8_t>("a UINT8 value"));
        case GgufType::int8:
            return GgufValue::make_int8(in.read<int8_t>("an INT8 value"));
        case GgufType::uint16:
            return GgufValue::make_uint16(in.read<uint16_t>("a UINT16 value"));
        case GgufType::int16:
            return GgufValue::make_int16(in.read<int16_t>("an INT16 value"));
        case GgufType::uint32:
            return GgufValue::make_uint32(in.read<uint32_t>("a UINT32 value"));
        case GgufType::int32:
            return GgufValue::make_int32(in.read<int32_t>("an INT32 value"));
        case GgufType::uint64:
            return GgufValue::make_uint64(in.read<uint64_t>("a UINT64 value"));
        case GgufType::int64:
            return GgufValue::make_int64(in.read<int64_t>("an INT64 value"));
        case GgufType::float32:
            return GgufValue::make_float32(in.read<float>("a FLOAT32 value"));
        case GgufType::float64:
            return GgufValue::make_float64(in.read<double>("a FLOAT64 value"));
        case GgufType::boolean: {
            const uint64_t at = in.offset();
            const uint8_t b = in.read<uint8_t>("a BOOL value");
            if (b > 1)
                fail("{}: offset {}: key '{}' is a BOOL holding {}, expected 0 or 1", in.file(), at,
                     key, b);
            return GgufValue::make_bool(b != 0);
        }
        case GgufType::string:
            return GgufValue::make_string(in.read_string("a STRING value"));
        case GgufType::array:
            return read_array(in, key, depth);
    }
    fail("{}: key '{}': unknown value type", in.file(), key);
}

// a * b, or an Error if it overflows int64.
int64_t checked_mul(int64_t a, int64_t b, const std::string& file, const std::string& tensor) {
    if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) {
        fail("{}: tensor '{}': element count overflows", file, tensor);
    }
    return a * b;
}

}  // namespace

int64_t GgufTensorInfo::n_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

GgufFile GgufFile::open(const std::string& path) {
    GgufFile file;
    file.mapping_ = MappedFile(path);
    file.bytes_ = file.mapping_.bytes();
    file.name_ = path;
    file.parse_all();
    return file;
}

GgufFile GgufFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
    GgufFile file;
    file.bytes_ = bytes;
    file.name_ = name;
    file.parse_all();
    return file;
}

void GgufFile::parse_all() {
    ByteReader in(bytes_, name_);
    if (bytes_.size() < 4 || in.read<uint32_t>("the magic") != k_magic) {
        fail("{}: not a GGUF file (the first 4 bytes are not \"GGUF\")", name_);
    }
    version_ = in.read<uint32_t>("the version");
    if (version_ == 0x02000000 || version_ == 0x03000000) {
        fail("{}: offset 4: a big-endian GGUF file, which edgeq does not read", name_);
    }
    if (version_ != 2 && version_ != 3) {
        fail("{}: offset 4: GGUF version {} is not supported (expected 2 or 3)", name_, version_);
    }
    const uint64_t n_tensors = in.read<uint64_t>("the tensor count");
    const uint64_t n_kv = in.read<uint64_t>("the metadata count");
    // A key-value pair takes at least 13 bytes, a tensor info at least 24.
    if (n_kv > in.remaining() / 13)
        fail("{}: offset 16: metadata count {} is more than the file can hold", name_, n_kv);
    if (n_tensors > in.remaining() / 24)
        fail("{}: offset 8: tensor count {} is more than the file can hold", name_, n_tensors);

    std::unordered_set<std::string> keys;
    metadata_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        const uint64_t at = in.offset();
        std::string key = in.read_string("a metadata key");
        if (!keys.insert(key).second)
            fail("{}: offset {}: duplicate metadata key '{}'", name_, at, key);
        const GgufType type = read_type(in, key);
        GgufValue value = read_value(in, type, key, 0);
        metadata_.emplace_back(std::move(key), std::move(value));
    }
    if (const GgufValue* align = find("general.alignment")) {
        if (align->type() != GgufType::uint32) {
            fail("{}: general.alignment is {}, expected UINT32", name_,
                 gguf_type_name(align->type()));
        }
        alignment_ = align->to_uint();
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
            fail("{}: general.alignment is {}, expected a power of two", name_, alignment_);
        }
    }

    std::unordered_set<std::string> names;
    tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        const uint64_t at = in.offset();
        GgufTensorInfo t;
        t.name = in.read_string("a tensor name");
        if (!names.insert(t.name).second)
            fail("{}: offset {}: duplicate tensor name '{}'", name_, at, t.name);
        const uint32_t n_dims = in.read<uint32_t>("a tensor's dimension count");
        if (n_dims > k_max_dims) {
            fail("{}: offset {}: tensor '{}' has {} dimensions, at most {} are allowed", name_, at,
                 t.name, n_dims, k_max_dims);
        }
        int64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t dim = in.read<uint64_t>("a tensor dimension");
            if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                fail("{}: offset {}: tensor '{}' dimension {} is {}, too large", name_, at, t.name,
                     d, dim);
            }
            t.shape.push_back(static_cast<int64_t>(dim));
            n_elements = checked_mul(n_elements, static_cast<int64_t>(dim), name_, t.name);
        }
        const uint64_t type_at = in.offset();
        const uint32_t type_id = in.read<uint32_t>("a tensor type");
        const DType* dt = find_dtype(type_id);
        if (dt == nullptr)
            fail("{}: offset {}: tensor '{}' has unknown type id {}", name_, type_at, t.name,
                 type_id);
        t.type = dt->type;
        const int64_t row = t.shape.empty() ? 1 : t.shape[0];
        if (row % dt->block_size != 0) {
            fail(
                "{}: tensor '{}': a row of {} values is not a whole number of {} blocks ({} values "
                "each)",
                name_, t.name, row, dt->name, dt->block_size);
        }
        const int64_t n_blocks = n_elements / dt->block_size;
        t.n_bytes = static_cast<uint64_t>(
            checked_mul(n_blocks, static_cast<int64_t>(dt->type_size), name_, t.name));
        const uint64_t offset_at = in.offset();
        t.offset = in.read<uint64_t>("a tensor data offset");
        if (t.offset % alignment_ != 0) {
            fail("{}: offset {}: tensor '{}' data offset {} is not a multiple of the alignment {}",
                 name_, offset_at, t.name, t.offset, alignment_);
        }
        tensors_.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment.
    const uint64_t pos = in.offset();
    data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
    const uint64_t data_size = bytes_.size() > data_offset_ ? bytes_.size() - data_offset_ : 0;
    // The converters and kernels read F32 and F16 values (and blocks holding them) in place:
    // tensor data must start on a 4-byte boundary. Every writer's alignment (32 by default)
    // gives that; only a general.alignment of 1 or 2 could break it.
    for (const GgufTensorInfo& t : tensors_) {
        const uint64_t address =
            reinterpret_cast<uintptr_t>(bytes_.data()) + data_offset_ + t.offset;
        if (address % 4 != 0) {
            fail(
                "{}: tensor '{}' data (offset {} in the data section at {}) does not start on a "
                "4-byte "
                "boundary; edgeq reads tensor data in place and needs it (general.alignment {})",
                name_, t.name, t.offset, data_offset_, alignment_);
        }
    }
    std::vector<const GgufTensorInfo*> by_offset;
    by_offset.reserve(tensors_.size());
    for (const GgufTensorInfo& t : tensors_) {
        if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
            fail(
                "{}: tensor '{}' ({} bytes at data offset {}) extends past the end of the file ({} "
                "data bytes)",
                name_, t.name, t.n_bytes, t.offset, data_size);
        }
        by_offset.push_back(&t);
    }
    std::sort(
        by_offset.begin(), by_offset.end(),
        [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const GgufTensorInfo& prev = *by_offset[i - 1];
        if (prev.offset + prev.n_bytes > by_offset[i]->offset) {
            fail("{}: tensors '{}' and '{}' overlap", name_, prev.name, by_offset[i]->name);
        }
    }
}

const GgufValue* GgufFile::find(std::string_view key) const {
    for (const auto& [k, v] : metadata_) {
        if (k == key) return &v;
    }
    return nullptr;
}

const GgufValue& GgufFile::get(std::string_view key) const {
    const GgufValue* value = find(key);
    if (value == nullptr) fail("{}: metadata key '{}' is missing", name_, key);
    return *value;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
    const GgufValue* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (value->type() != GgufType::string) {
        fail("{}: metadata key '{}' is {}, expected STRING", name_, key,
             gguf_type_name(value->type()));
    }
    return value->to_string();
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
    const GgufValue* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_integer()) {
        fail("{}: metadata key '{}' is {}, expected an integer", name_, key,
             gguf_type_name(value->type()));
    }
    try {
        return value->to_uint();
    } catch (const Error& e) {
        fail("{}: metadata key '{}': {}", name_, key, e.what());
    }
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
    for (const GgufTensorInfo& t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

void GgufFile::release(const GgufTensorInfo& tensor) const {
    if (mapping_.data() != nullptr) mapping_.release(data_offset_ + tensor.offset, tensor.n_bytes);
}

}  // namespace edgeq
