#include "edgeq/formats/gguf-value.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

template <typename T>
uint64_t to_bits(T v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}

template <typename T>
T from_bits(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
}

std::string quote(const std::string& s, size_t max_chars = 60) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size() && i < max_chars; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c < 0x20) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > max_chars) out += "...";
    return out + "\"";
}

}  // namespace

const char* gguf_type_name(GgufType type) {
    switch (type) {
        case GgufType::uint8:
            return "UINT8";
        case GgufType::int8:
            return "INT8";
        case GgufType::uint16:
            return "UINT16";
        case GgufType::int16:
            return "INT16";
        case GgufType::uint32:
            return "UINT32";
        case GgufType::int32:
            return "INT32";
        case GgufType::float32:
            return "FLOAT32";
        case GgufType::boolean:
            return "BOOL";
        case GgufType::string:
            return "STRING";
        case GgufType::array:
            return "ARRAY";
        case GgufType::uint64:
            return "UINT64";
        case GgufType::int64:
            return "INT64";
        case GgufType::float64:
            return "FLOAT64";
    }
    return "?";
}

size_t gguf_type_size(GgufType type) {
    switch (type) {
        case GgufType::uint8:
        case GgufType::int8:
        case GgufType::boolean:
            return 1;
        case GgufType::uint16:
        case GgufType::int16:
            return 2;
        case GgufType::uint32:
        case GgufType::int32:
        case GgufType::float32:
            return 4;
        case GgufType::uint64:
        case GgufType::int64:
        case GgufType::float64:
            return 8;
        case GgufType::string:
        case GgufType::array:
            return 0;
    }
    return 0;
}

bool gguf_type_valid(uint32_t id) {
    return id <= static_cast<uint32_t>(GgufType::float64);
}

#define EDGEQ_SCALAR_FACTORY(name, T, tag)  \
    GgufValue GgufValue::make_##name(T v) { \
        GgufValue value;                    \
        value.type_ = GgufType::tag;        \
        value.bits_ = to_bits(v);           \
        return value;                       \
    }
EDGEQ_SCALAR_FACTORY(uint8, uint8_t, uint8)
EDGEQ_SCALAR_FACTORY(int8, int8_t, int8)
EDGEQ_SCALAR_FACTORY(uint16, uint16_t, uint16)
EDGEQ_SCALAR_FACTORY(int16, int16_t, int16)
EDGEQ_SCALAR_FACTORY(uint32, uint32_t, uint32)
EDGEQ_SCALAR_FACTORY(int32, int32_t, int32)
EDGEQ_SCALAR_FACTORY(uint64, uint64_t, uint64)
EDGEQ_SCALAR_FACTORY(int64, int64_t, int64)
EDGEQ_SCALAR_FACTORY(float32, float, float32)
EDGEQ_SCALAR_FACTORY(float64, double, float64)
#undef EDGEQ_SCALAR_FACTORY

GgufValue GgufValue::make_bool(bool v) {
    GgufValue value;
    value.type_ = GgufType::boolean;
    value.bits_ = v ? 1 : 0;
    return value;
}

GgufValue GgufValue::make_string(std::string v) {
    GgufValue value;
    value.type_ = GgufType::string;
    value.string_ = std::move(v);
    return value;
}

GgufValue GgufValue::make_array(GgufType element_type, std::vector<uint8_t> element_bytes) {
    const size_t size = gguf_type_size(element_type);
    if (size == 0)
        fail("GGUF array of {} must be made from its items", gguf_type_name(element_type));
    if (element_bytes.size() % size != 0) {
        fail("GGUF array of {}: {} bytes is not a whole number of elements",
             gguf_type_name(element_type), element_bytes.size());
    }
    auto array = std::make_shared<Array>();
    array->element_type = element_type;
    array->size = element_bytes.size() / size;
    array->bytes = std::move(element_bytes);
    GgufValue value;
    value.type_ = GgufType::array;
    value.array_ = std::move(array);
    return value;
}

GgufValue GgufValue::make_string_array(std::vector<std::string> items) {
    auto array = std::make_shared<Array>();
    array->element_type = GgufType::string;
    array->size = items.size();
    array->strings = std::move(items);
    GgufValue value;
    value.type_ = GgufType::array;
    value.array_ = std::move(array);
    return value;
}

GgufValue GgufValue::make_array_of_arrays(std::vector<GgufValue> items) {
    for (const GgufValue& item : items) {
        if (item.type() != GgufType::array) {
            fail("GGUF array of arrays: an item is {}", gguf_type_name(item.type()));
        }
    }
    auto array = std::make_shared<Array>();
    array->element_type = GgufType::array;
    array->size = items.size();
    array->arrays = std::move(items);
    GgufValue value;
    value.type_ = GgufType::array;
    value.array_ = std::move(array);
    return value;
}

bool GgufValue::is_integer() const {
    switch (type_) {
        case GgufType::uint8:
        case GgufType::int8:
        case GgufType::uint16:
        case GgufType::int16:
        case GgufType::uint32:
        case GgufType::int32:
        case GgufType::uint64:
        case GgufType::int64:
            return true;
        default:
            return false;
    }
}

int64_t GgufValue::to_int() const {
    switch (type_) {
        case GgufType::uint8:
            return from_bits<uint8_t>(bits_);
        case GgufType::int8:
            return from_bits<int8_t>(bits_);
        case GgufType::uint16:
            return from_bits<uint16_t>(bits_);
        case GgufType::int16:
            return from_bits<int16_t>(bits_);
        case GgufType::uint32:
            return from_bits<uint32_t>(bits_);
        case GgufType::int32:
            return from_bits<int32_t>(bits_);
        case GgufType::int64:
            return from_bits<int64_t>(bits_);
        case GgufType::uint64: {
            const uint64_t v = from_bits<uint64_t>(bits_);
            if (v > static_cast<uint64_t>(INT64_MAX)) fail("GGUF value {} does not fit int64", v);
            return static_cast<int64_t>(v);
        }
        default:
            fail("GGUF value is {}, expected an integer", gguf_type_name(type_));
    }
}

uint64_t GgufValue::to_uint() const {
    if (type_ == GgufType::uint64) return from_bits<uint64_t>(bits_);
    const int64_t v = to_int();
    if (v < 0) fail("GGUF value {} is negative, expected a count", v);
    return static_cast<uint64_t>(v);
}

double GgufValue::to_double() const {
    if (type_ == GgufType::float32) return from_bits<float>(bits_);
    if (type_ == GgufType::float64) return from_bits<double>(bits_);
    if (is_integer())
        return type_ == GgufType::uint64 ? static_cast<double>(to_uint())
                                         : static_cast<double>(to_int());
    fail("GGUF value is {}, expected a number", gguf_type_name(type_));
}

bool GgufValue::to_bool() const {
    if (type_ != GgufType::boolean) fail("GGUF value is {}, expected BOOL", gguf_type_name(type_));
    return bits_ != 0;
}

const std::string& GgufValue::to_string() const {
    if (type_ != GgufType::string) fail("GGUF value is {}, expected STRING", gguf_type_name(type_));
    return string_;
}

GgufType GgufValue::element_type() const {
    if (type_ != GgufType::array) fail("GGUF value is {}, expected ARRAY", gguf_type_name(type_));
    return array_->element_type;
}

uint64_t GgufValue::array_size() const {
    if (type_ != GgufType::array) fail("GGUF value is {}, expected ARRAY", gguf_type_name(type_));
    return array_->size;
}

const std::string& GgufValue::string_at(uint64_t i) const {
    if (element_type() != GgufType::string) {
        fail("GGUF array holds {}, expected STRING", gguf_type_name(array_->element_type));
    }
    if (i >= array_->size) fail("GGUF array index {} out of range (size {})", i, array_->size);
    return array_->strings[i];
}

GgufValue GgufValue::element_at(uint64_t i) const {
    const GgufType element = element_type();
    if (i >= array_->size) fail("GGUF array index {} out of range (size {})", i, array_->size);
    if (element == GgufType::string) return make_string(array_->strings[i]);
    if (element == GgufType::array) return array_->arrays[i];
    const size_t size = gguf_type_size(element);
    GgufValue value;
    value.type_ = element;
    std::memcpy(&value.bits_, array_->bytes.data() + i * size, size);
    return value;
}

std::span<const uint8_t> GgufValue::element_bytes() const {
    const GgufType element = element_type();
    if (gguf_type_size(element) == 0) {
        fail("GGUF array of {} has no fixed-size elements", gguf_type_name(element));
    }
    return array_->bytes;
}

std::string GgufValue::summary(size_t max_items) const {
    switch (type_) {
        case GgufType::string:
            return quote(string_);
        case GgufType::boolean:
            return bits_ != 0 ? "true" : "false";
        case GgufType::float32:
            return fmt::format("{}", from_bits<float>(bits_));
        case GgufType::float64:
            return fmt::format("{}", to_double());
        case GgufType::uint64:
            return fmt::format("{}", to_uint());
        case GgufType::array: {
            std::string out =
                fmt::format("[{} x {}] [", array_->size, gguf_type_name(array_->element_type));
            const uint64_t shown = std::min<uint64_t>(array_->size, max_items);
            for (uint64_t i = 0; i < shown; ++i) {
                if (i > 0) out += ", ";
                out += element_at(i).summary(max_items);
            }
            if (shown < array_->size) out += ", ...";
            return out + "]";
        }
        default:
            return fmt::format("{}", to_int());
    }
}

bool GgufValue::operator==(const GgufValue& other) const {
    if (type_ != other.type_) return false;
    if (type_ == GgufType::string) return string_ == other.string_;
    if (type_ != GgufType::array) return bits_ == other.bits_;
    const Array& a = *array_;
    const Array& b = *other.array_;
    return a.element_type == b.element_type && a.size == b.size && a.bytes == b.bytes &&
           a.strings == b.strings && a.arrays == b.arrays;
}

}  // namespace edgeq
