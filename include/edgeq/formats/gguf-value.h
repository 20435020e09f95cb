// GGUF metadata values: scalars, strings and arrays (of scalars, strings or arrays).
//
//   GgufValue v = GgufValue::make_uint32(2048);
//   v.to_uint() == 2048;
//   GgufValue tokens = GgufValue::make_string_array({"<s>", "</s>"});
//   tokens.array_size() == 2, tokens.string_at(1) == "</s>"
//
// Values are immutable once made and cheap to copy (arrays are shared).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace edgeq {

enum class GgufType : uint32_t {
    uint8 = 0,
    int8 = 1,
    uint16 = 2,
    int16 = 3,
    uint32 = 4,
    int32 = 5,
    float32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    uint64 = 10,
    int64 = 11,
    float64 = 12,
};

// "UINT32", "STRING", ...; "?" for ids outside the enum.
const char* gguf_type_name(GgufType type);
// Bytes of one element of a fixed-size type (0 for string and array).
size_t gguf_type_size(GgufType type);
bool gguf_type_valid(uint32_t id);

class GgufValue {
  public:
    GgufValue() = default;  // UINT8 0

    static GgufValue make_uint8(uint8_t v);
    static GgufValue make_int8(int8_t v);
    static GgufValue make_uint16(uint16_t v);
    static GgufValue make_int16(int16_t v);
    static GgufValue make_uint32(uint32_t v);
    static GgufValue make_int32(int32_t v);
    static GgufValue make_uint64(uint64_t v);
    static GgufValue make_int64(int64_t v);
    static GgufValue make_float32(float v);
    static GgufValue make_float64(double v);
    static GgufValue make_bool(bool v);
    static GgufValue make_string(std::string v);
    // An array of a fixed-size type from its little-endian element bytes.
    static GgufValue make_array(GgufType element_type, std::vector<uint8_t> element_bytes);
    static GgufValue make_string_array(std::vector<std::string> items);
    static GgufValue make_array_of_arrays(std::vector<GgufValue> items);
    template <typename T>
    static GgufValue make_numeric_array(GgufType element_type, std::span<const T> items);

    GgufType type() const { return type_; }
    bool is_integer() const;
    bool is_float() const { return type_ == GgufType::float32 || type_ == GgufType::float64; }

    // Scalar accessors; each throws an Error naming the types if this value is not one.
    uint64_t to_uint() const;  // any integer type holding a value >= 0
    int64_t to_int() const;    // any integer type that fits int64
    double to_double() const;  // float or integer types
    bool to_bool() const;
    const std::string& to_string() const;

    // Array accessors.
    GgufType element_type() const;
    uint64_t array_size() const;
    const std::string& string_at(uint64_t i) const;
    GgufValue element_at(uint64_t i) const;          // any element as a value
    std::span<const uint8_t> element_bytes() const;  // fixed-size element types only

    // A one-line rendering for people: scalars as values, strings quoted, long arrays
    // summarised after `max_items` elements.
    std::string summary(size_t max_items = 8) const;

    bool operator==(const GgufValue& other) const;

  private:
    struct Array {
        GgufType element_type = GgufType::uint8;
        uint64_t size = 0;
        std::vector<uint8_t> bytes;        // fixed-size elements, packed little-endian
        std::vector<std::string> strings;  // element_type == string
        std::vector<GgufValue> arrays;     // element_type == array
    };

    GgufType type_ = GgufType::uint8;
    uint64_t bits_ = 0;  // scalars: the value's bytes, zero-extended
    std::string string_;
    std::shared_ptr<const Array> array_;
};

template <typename T>
GgufValue GgufValue::make_numeric_array(GgufType element_type, std::span<const T> items) {
    std::vector<uint8_t> bytes(items.size_bytes());
    if (!bytes.empty()) std::memcpy(bytes.data(), items.data(), bytes.size());
    return make_array(element_type, std::move(bytes));
}

// Metadata: key-value pairs in file order.
using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

}  // namespace edgeq
