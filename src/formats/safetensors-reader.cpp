#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "edgeq/core/error.h"
#include "edgeq/core/half.h"
#include "edgeq/formats/safetensors.h"

namespace edgeq {
namespace {

// The reference implementation's limit; a real header is a few hundred kilobytes.
constexpr uint64_t k_max_header_bytes = 100'000'000;
// The header's containers: the top object (0), a tensor or __metadata__ object (1), a shape
// or data_offsets array (2). Anything deeper is malformed, and refusing it early bounds the
// memory a hostile header can make the parser allocate.
constexpr int k_max_json_depth = 2;

using ToFloatFn = void (*)(const uint8_t* src, float* dst, int64_t n);

// Values may be unaligned in memory (an odd header length), so every load is a memcpy.
template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

template <typename T>
void integers_to_float(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load<T>(src + i * sizeof(T)));
}

void f32_to_float(const uint8_t* src, float* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void f64_to_float(const uint8_t* src, float* dst, int64_t n) {
    // From float's largest value plus half an ulp on, IEEE rounds to infinity; C++ leaves
    // the conversion of such a double undefined, so it is spelled out.
    constexpr double k_overflow = 0x1.ffffffp127;
    for (int64_t i = 0; i < n; ++i) {
        const double d = load<double>(src + i * 8);
        if (std::fabs(d) >= k_overflow) {
            dst[i] = d > 0 ? INFINITY : -INFINITY;
        } else {
            dst[i] = static_cast<float>(d);  // NaN stays NaN
        }
    }
}

void f16_to_float(const uint8_t* src, float* dst, int64_t n) {
    if (reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) == 0) {
        fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(src), dst, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load<uint16_t>(src + 2 * i));
}

void bf16_to_float(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load<uint16_t>(src + 2 * i));
}

void bool_to_float(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0 ? 1.0f : 0.0f;
}

void f8_e4m3_to_float(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f8_e4m3_to_fp32(src[i]);
}

void f8_e5m2_to_float(const uint8_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f8_e5m2_to_fp32(src[i]);
}

struct DTypeRow {
    SafetensorsDType dtype;
    std::string_view name;
    size_t size;
    ToFloatFn to_float;
};

// One row per type, in enum order.
constexpr std::array<DTypeRow, 15> k_dtypes = {{
    {SafetensorsDType::F64, "F64", 8, f64_to_float},
    {SafetensorsDType::F32, "F32", 4, f32_to_float},
    {SafetensorsDType::F16, "F16", 2, f16_to_float},
    {SafetensorsDType::BF16, "BF16", 2, bf16_to_float},
    {SafetensorsDType::I64, "I64", 8, integers_to_float<int64_t>},
    {SafetensorsDType::I32, "I32", 4, integers_to_float<int32_t>},
    {SafetensorsDType::I16, "I16", 2, integers_to_float<int16_t>},
    {SafetensorsDType::I8, "I8", 1, integers_to_float<int8_t>},
    {SafetensorsDType::U64, "U64", 8, integers_to_float<uint64_t>},
    {SafetensorsDType::U32, "U32", 4, integers_to_float<uint32_t>},
    {SafetensorsDType::U16, "U16", 2, integers_to_float<uint16_t>},
    {SafetensorsDType::U8, "U8", 1, integers_to_float<uint8_t>},
    {SafetensorsDType::BOOL, "BOOL", 1, bool_to_float},
    {SafetensorsDType::F8_E4M3, "F8_E4M3", 1, f8_e4m3_to_float},
    {SafetensorsDType::F8_E5M2, "F8_E5M2", 1, f8_e5m2_to_float},
}};

constexpr std::array<SafetensorsDType, k_dtypes.size()> k_dtype_list = [] {
    std::array<SafetensorsDType, k_dtypes.size()> list{};
    for (size_t i = 0; i < k_dtypes.size(); ++i) list[i] = k_dtypes[i].dtype;
    return list;
}();

const DTypeRow& row(SafetensorsDType dtype) {
    return k_dtypes[static_cast<size_t>(dtype)];
}

// nlohmann's messages start "[json.exception.parse_error.101] parse error at line 1, column
// 7: "; keep what follows, with bytes that would garble a terminal replaced.
std::string json_reason(const std::exception& e) {
    std::string what = e.what();
    const size_t column = what.find("column ");
    if (column != std::string::npos) {
        const size_t colon = what.find(": ", column);
        if (colon != std::string::npos) what = what.substr(colon + 2);
    } else if (const size_t bracket = what.find("] "); bracket != std::string::npos) {
        what = what.substr(bracket + 2);
    }
    for (char& c : what) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) c = '?';
    }
    return what;
}

const char* json_type(const nlohmann::json& v) {
    return v.type_name();
}

// A name from the file as an error message may show it: control characters escaped, so that
// a hostile name cannot break the one-line message or drive a terminal, and long names cut.
std::string printable(std::string_view name) {
    constexpr size_t k_max_shown = 200;
    std::string shown;
    size_t end = std::min(name.size(), k_max_shown);
    while (end < name.size() && end > 0 && (static_cast<unsigned char>(name[end]) & 0xc0) == 0x80) {
        --end;  // cut at a character boundary
    }
    for (const char c : name.substr(0, end)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '\\') {
            shown += fmt::format("\\x{:02x}", u);
        } else {
            shown += c;
        }
    }
    if (end < name.size()) shown += fmt::format("... ({} bytes)", name.size());
    return shown;
}

// "[4096, 11008]"; past eight dimensions, the rest are counted, not listed.
std::string shape_text(const std::vector<int64_t>& shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size() && i < 8; ++i) {
        text += fmt::format("{}{}", i == 0 ? "" : ", ", shape[i]);
    }
    if (shape.size() > 8) text += fmt::format(", ... ({} dimensions)", shape.size());
    return text + "]";
}

// A JSON integer that fits int64, or nullopt for anything else (floats, huge values).
std::optional<int64_t> json_int64(const nlohmann::json& v) {
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    return std::nullopt;
}

// Parses the header, rejecting duplicate keys at any level (nlohmann keeps the last) and
// containers nested deeper than the format has. nlohmann's parser is iterative, so depth
// cannot overflow the stack; the limit is about memory.
nlohmann::json parse_header(const std::string& file, const char* begin, const char* end) {
    std::vector<std::set<std::string>> open_objects;
    const auto callback = [&](int depth, nlohmann::json::parse_event_t event,
                              nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        switch (event) {
            case Event::object_start:
            case Event::array_start:
                if (depth > k_max_json_depth) {
                    fail("{}: header nests JSON containers deeper than a safetensors header has",
                         file);
                }
                if (event == Event::object_start) open_objects.emplace_back();
                break;
            case Event::object_end:
                if (!open_objects.empty()) open_objects.pop_back();
                break;
            case Event::key:
                if (!open_objects.empty() && parsed.is_string() &&
                    !open_objects.back().insert(parsed.get<std::string>()).second) {
                    fail("{}: header has the key '{}' twice{}", file,
                         printable(parsed.get<std::string>()),
                         depth == 1 ? " (a duplicate tensor name)" : "");
                }
                break;
            default:
                break;
        }
        return true;
    };
    try {
        return nlohmann::json::parse(begin, end, callback);
    } catch (const nlohmann::json::parse_error& e) {
        const uint64_t at = 8 + (e.byte > 0 ? e.byte - 1 : 0);
        fail("{}: offset {}: header is not valid JSON: {}", file, at, json_reason(e));
    } catch (const nlohmann::json::exception& e) {
        fail("{}: header is not valid JSON: {}", file, json_reason(e));
    }
}

// Checks one tensor entry of the header and fills everything but `data` and `offset`.
SafetensorsTensor parse_entry(const std::string& file, const std::string& raw_name,
                              const nlohmann::json& entry, uint64_t data_size,
                              uint64_t& begin_out) {
    const std::string name = printable(raw_name);
    if (!entry.is_object()) {
        fail("{}: tensor '{}': entry is a JSON {}, expected an object", file, name,
             json_type(entry));
    }
    SafetensorsTensor t;
    t.name = raw_name;

    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end()) fail("{}: tensor '{}': no \"dtype\"", file, name);
    if (!dtype_it->is_string()) {
        fail("{}: tensor '{}': \"dtype\" is a JSON {}, expected a string", file, name,
             json_type(*dtype_it));
    }
    const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
    const std::optional<SafetensorsDType> dtype = find_safetensors_dtype(dtype_name);
    if (!dtype) fail("{}: tensor '{}': unknown dtype '{}'", file, name, printable(dtype_name));
    t.dtype = *dtype;

    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end()) fail("{}: tensor '{}': no \"shape\"", file, name);
    if (!shape_it->is_array()) {
        fail("{}: tensor '{}': \"shape\" is a JSON {}, expected an array of integers", file, name,
             json_type(*shape_it));
    }
    // The product of the non-zero dimensions must fit, so that code which multiplies a few of
    // them (rows, columns) cannot overflow even when another dimension is zero.
    int64_t product = 1;
    bool has_zero = false;
    for (size_t i = 0; i < shape_it->size(); ++i) {
        const nlohmann::json& d = (*shape_it)[i];
        const std::optional<int64_t> dim = json_int64(d);
        if (!dim) {
            fail("{}: tensor '{}': shape[{}] is {}, expected a non-negative integer", file, name, i,
                 d.is_number() ? "not an integer that fits 64 bits" : json_type(d));
        }
        if (*dim < 0) fail("{}: tensor '{}': shape[{}] is negative ({})", file, name, i, *dim);
        t.shape.push_back(*dim);
        if (*dim == 0) {
            has_zero = true;
        } else if (__builtin_mul_overflow(product, *dim, &product)) {
            fail("{}: tensor '{}': the product of the dimensions overflows 64 bits at shape[{}]",
                 file, name, i);
        }
    }
    t.n_elements = has_zero ? 0 : product;
    const uint64_t element_size = safetensors_dtype_size(t.dtype);
    if (static_cast<uint64_t>(t.n_elements) > std::numeric_limits<uint64_t>::max() / element_size) {
        fail("{}: tensor '{}': {} elements of {} overflow 64 bits", file, name, t.n_elements,
             dtype_name);
    }
    t.n_bytes = static_cast<uint64_t>(t.n_elements) * element_size;

    const auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end()) fail("{}: tensor '{}': no \"data_offsets\"", file, name);
    const nlohmann::json& offsets = *offsets_it;
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_integer() ||
        !offsets[1].is_number_integer()) {
        fail("{}: tensor '{}': \"data_offsets\" must be two integers [begin, end]", file, name);
    }
    const std::optional<int64_t> begin = json_int64(offsets[0]);
    const std::optional<int64_t> end = json_int64(offsets[1]);
    if (!begin || !end || *begin < 0 || *end < 0) {
        fail("{}: tensor '{}': \"data_offsets\" must be non-negative 64-bit integers", file, name);
    }
    if (*begin > *end) {
        fail("{}: tensor '{}': data_offsets [{}, {}] end before they begin", file, name, *begin,
             *end);
    }
    const auto b = static_cast<uint64_t>(*begin);
    const auto e = static_cast<uint64_t>(*end);
    if (e - b != t.n_bytes) {
        fail("{}: tensor '{}': data_offsets [{}, {}] hold {} bytes, but {} shape {} needs {}", file,
             name, b, e, e - b, dtype_name, shape_text(t.shape), t.n_bytes);
    }
    if (e > data_size) {
        fail("{}: tensor '{}': data_offsets [{}, {}] end past the end of the file ({} data bytes)",
             file, name, b, e, data_size);
    }
    begin_out = b;
    return t;
}

}  // namespace

std::string_view safetensors_dtype_name(SafetensorsDType dtype) {
    return row(dtype).name;
}

std::optional<SafetensorsDType> find_safetensors_dtype(std::string_view name) {
    for (const DTypeRow& r : k_dtypes) {
        if (r.name == name) return r.dtype;
    }
    return std::nullopt;
}

size_t safetensors_dtype_size(SafetensorsDType dtype) {
    return row(dtype).size;
}

std::span<const SafetensorsDType> all_safetensors_dtypes() {
    return k_dtype_list;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile file;
    file.mapping_ = MappedFile(path);
    file.bytes_ = file.mapping_.bytes();
    file.name_ = path;
    file.parse_all();
    return file;
}

SafetensorsFile SafetensorsFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
    SafetensorsFile file;
    file.bytes_ = bytes;
    file.name_ = name;
    file.parse_all();
    return file;
}

void SafetensorsFile::parse_all() {
    const std::string& file = name_;
    const uint64_t size = bytes_.size();
    if (size < 8) {
        fail("{}: {} bytes, too short for a safetensors file (8-byte header length missing)", file,
             size);
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes_[static_cast<size_t>(i)];
    if (n > k_max_header_bytes) {
        fail(
            "{}: offset 0: header length {} is larger than the {}-byte limit (not a "
            "safetensors file?)",
            file, n, k_max_header_bytes);
    }
    if (n > size - 8) {
        fail(
            "{}: offset 0: header length {} runs past the end of the file ({} bytes follow the "
            "length)",
            file, n, size - 8);
    }
    header_size_ = n;
    const char* header = reinterpret_cast<const char*>(bytes_.data() + 8);
    const char* header_end = header + n;
    const char* first = std::find_if(
        header, header_end, [](char c) { return c != ' ' && c != '\t' && c != '\n' && c != '\r'; });
    if (first == header_end || *first != '{') {
        fail("{}: offset {}: header does not start with '{{' (not a safetensors file?)", file,
             8 + (first - header));
    }
    // nlohmann stops at a NUL as if the input ended, which would accept anything after it;
    // JSON has no place for a raw NUL.
    if (const void* nul = std::memchr(header, 0, n); nul != nullptr) {
        fail("{}: offset {}: header holds a NUL byte (only spaces may pad it)", file,
             8 + (static_cast<const char*>(nul) - header));
    }
    const nlohmann::json root = parse_header(file, header, header_end);
    if (!root.is_object())
        fail("{}: header is a JSON {}, expected an object", file, root.type_name());

    const uint64_t data_size = size - data_offset();
    const uint8_t* data = bytes_.data() + data_offset();
    tensors_.reserve(root.size());
    for (const auto& [key, value] : root.items()) {
        if (key == "__metadata__") {
            if (!value.is_object()) {
                fail("{}: \"__metadata__\" is a JSON {}, expected an object of strings", file,
                     json_type(value));
            }
            for (const auto& [meta_key, meta_value] : value.items()) {
                if (!meta_value.is_string()) {
                    fail("{}: \"__metadata__\" key '{}' is a JSON {}, expected a string", file,
                         printable(meta_key), json_type(meta_value));
                }
                metadata_.emplace(meta_key, meta_value.get<std::string>());
            }
            continue;
        }
        uint64_t begin = 0;
        SafetensorsTensor t = parse_entry(file, key, value, data_size, begin);
        t.offset = data_offset() + begin;
        t.data = data + begin;
        tensors_.push_back(std::move(t));
    }

    std::sort(tensors_.begin(), tensors_.end(),
              [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
                  if (a.offset != b.offset) return a.offset < b.offset;
                  if (a.n_bytes != b.n_bytes) return a.n_bytes < b.n_bytes;
                  return a.name < b.name;
              });
    // Sorted by start, two non-empty tensors overlap exactly when one starts before the
    // furthest end so far. Empty tensors hold no bytes and may sit anywhere.
    const SafetensorsTensor* furthest = nullptr;
    for (const SafetensorsTensor& t : tensors_) {
        if (t.n_bytes == 0) continue;
        if (furthest != nullptr && t.offset < furthest->offset + furthest->n_bytes) {
            fail("{}: tensors '{}' (bytes {} to {}) and '{}' (bytes {} to {}) overlap", file,
                 printable(furthest->name), furthest->offset, furthest->offset + furthest->n_bytes,
                 printable(t.name), t.offset, t.offset + t.n_bytes);
        }
        if (furthest == nullptr || t.offset + t.n_bytes > furthest->offset + furthest->n_bytes) {
            furthest = &t;
        }
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
        // Duplicates were refused while parsing; this cannot fail.
        index_.emplace(tensors_[i].name, i);
    }
}

const std::string* SafetensorsFile::find_metadata(std::string_view key) const {
    const auto it = metadata_.find(key);
    return it == metadata_.end() ? nullptr : &it->second;
}

const SafetensorsTensor* SafetensorsFile::find_tensor(std::string_view name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::tensor(std::string_view name) const {
    const SafetensorsTensor* t = find_tensor(name);
    if (t == nullptr) fail("{}: no tensor '{}'", name_, printable(name));
    return *t;
}

void SafetensorsFile::advise_sequential(const SafetensorsTensor& tensor) const {
    if (mapping_.data() != nullptr) mapping_.advise_sequential(tensor.offset, tensor.n_bytes);
}

void SafetensorsFile::release(const SafetensorsTensor& tensor) const {
    if (mapping_.data() != nullptr) mapping_.release(tensor.offset, tensor.n_bytes);
}

void to_float(const SafetensorsTensor& tensor, int64_t first, int64_t n, float* dst) {
    if (first < 0 || n < 0 || first > tensor.n_elements || n > tensor.n_elements - first) {
        fail("tensor '{}': {} elements from element {} requested, it has {}",
             printable(tensor.name), n, first, tensor.n_elements);
    }
    if (n == 0) return;
    const DTypeRow& r = row(tensor.dtype);
    r.to_float(tensor.data + static_cast<uint64_t>(first) * r.size, dst, n);
}

std::vector<float> to_float(const SafetensorsTensor& tensor) {
    std::vector<float> values(static_cast<size_t>(tensor.n_elements));
    to_float(tensor, 0, tensor.n_elements, values.data());
    return values;
}

std::span<const uint16_t> half_words(const SafetensorsTensor& tensor) {
    if (tensor.dtype != SafetensorsDType::F16 && tensor.dtype != SafetensorsDType::BF16) {
        fail("tensor '{}' is {}, expected F16 or BF16", printable(tensor.name),
             safetensors_dtype_name(tensor.dtype));
    }
    if (reinterpret_cast<uintptr_t>(tensor.data) % alignof(uint16_t) != 0) {
        fail("tensor '{}': data at file offset {} is not 2-byte aligned; use to_float",
             printable(tensor.name), tensor.offset);
    }
    return {reinterpret_cast<const uint16_t*>(tensor.data), static_cast<size_t>(tensor.n_elements)};
}

}  // namespace edgeq
