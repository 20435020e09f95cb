// JSON and text as the converter (Python) sees them, and the ordered key list.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "edgeq/core/error.h"
#include "hf-tokenizer-internal.h"

namespace edgeq::hf_tokenizer {
namespace {

// Python's json module recurses once per nesting level and stops near its recursion limit
// (1000); nlohmann and the code here also recurse, so deeper files are refused.
constexpr int k_max_json_depth = 512;

// nlohmann's message without its "[json.exception...] parse error at line 1, column 7: ".
std::string json_reason(const std::exception& e) {
    std::string what = e.what();
    if (const size_t column = what.find("column "); column != std::string::npos) {
        if (const size_t colon = what.find(": ", column); colon != std::string::npos) {
            what = what.substr(colon + 2);
        }
    } else if (const size_t bracket = what.find("] "); bracket != std::string::npos) {
        what = what.substr(bracket + 2);
    }
    return shown(what);
}

// The deepest nesting of arrays and objects in `text` (strings skipped), stopping early once
// past `limit`.
int json_depth(std::string_view text, int limit) {
    int depth = 0;
    int deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) return deepest;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

// Collects the keys of one object in file order (see key_order()).
class KeyOrderSax {
  public:
    explicit KeyOrderSax(std::string_view member) : member_(member) {}

    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(json::number_integer_t) { return true; }
    bool number_unsigned(json::number_unsigned_t) { return true; }
    bool number_float(json::number_float_t, const json::string_t&) { return true; }
    bool string(json::string_t&) { return true; }
    bool binary(json::binary_t&) { return true; }
    bool start_object(std::size_t) {
        const bool record = member_.empty()
                                ? stack_.empty()
                                : stack_.size() == 1 && top_is_object_ && top_key_ == member_;
        if (stack_.empty()) top_is_object_ = true;
        stack_.push_back(record);
        return true;
    }
    bool key(json::string_t& key) {
        if (stack_.size() == 1) top_key_ = key;
        if (!stack_.empty() && stack_.back() && seen_.insert(key).second) keys_.push_back(key);
        return true;
    }
    bool end_object() {
        stack_.pop_back();
        return true;
    }
    bool start_array(std::size_t) {
        stack_.push_back(false);
        return true;
    }
    bool end_array() {
        stack_.pop_back();
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
        return false;
    }

    std::vector<std::string> take() { return std::move(keys_); }

  private:
    std::string member_;
    std::vector<bool> stack_;  // per open container: are its keys recorded
    bool top_is_object_ = false;
    std::string top_key_;
    std::vector<std::string> keys_;
    std::set<std::string> seen_;
};

// Decodes one code point of valid UTF-8 at text[i], advancing i.
uint32_t next_code_point(std::string_view text, size_t& i) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    int n = b0 < 0x80 ? 1 : b0 < 0xe0 ? 2 : b0 < 0xf0 ? 3 : 4;
    if (i + n > text.size()) n = 1;
    uint32_t cp = n == 1 ? b0 : n == 2 ? b0 & 0x1f : n == 3 ? b0 & 0x0f : b0 & 0x07;
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    i += n;
    return cp;
}

bool python_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

}  // namespace

bool truthy(const json& value) {
    switch (value.type()) {
        case json::value_t::boolean:
            return value.get<bool>();
        case json::value_t::number_integer:
            return value.get<int64_t>() != 0;
        case json::value_t::number_unsigned:
            return value.get<uint64_t>() != 0;
        case json::value_t::number_float:
            return value.get<double>() != 0.0;
        case json::value_t::string:
            return !value.get_ref<const std::string&>().empty();
        case json::value_t::array:
        case json::value_t::object:
            return !value.empty();
        default:
            return false;
    }
}

bool py_equal(const json& a, const json& b) {
    const auto numeric = [](const json& v) { return v.is_number() || v.is_boolean(); };
    if (numeric(a) && numeric(b)) {
        // long double holds every int64/uint64 exactly, as Python compares ints with floats.
        const auto value = [](const json& v) -> long double {
            if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
            if (v.is_number_unsigned()) return static_cast<long double>(v.get<uint64_t>());
            if (v.is_number_integer()) return static_cast<long double>(v.get<int64_t>());
            return static_cast<long double>(v.get<double>());
        };
        return value(a) == value(b);
    }
    if (a.type() != b.type()) return false;
    switch (a.type()) {
        case json::value_t::null:
            return true;
        case json::value_t::string:
            return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
        case json::value_t::array:
            if (a.size() != b.size()) return false;
            for (size_t i = 0; i < a.size(); ++i) {
                if (!py_equal(a[i], b[i])) return false;
            }
            return true;
        case json::value_t::object:
            if (a.size() != b.size()) return false;
            for (auto it = a.begin(); it != a.end(); ++it) {
                const auto other = b.find(it.key());
                if (other == b.end() || !py_equal(*it, *other)) return false;
            }
            return true;
        default:
            return false;
    }
}

const json* get(const json& object, std::string_view key, std::string_view where) {
    if (!object.is_object()) fail("{}: is {}, expected an object", where, describe(object));
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

std::optional<int64_t> as_int(const json& value) {
    if (value.is_boolean()) return value.get<bool>() ? 1 : 0;
    if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
    if (value.is_number_unsigned()) {
        const uint64_t u = value.get<uint64_t>();
        // Larger ints are out of every range the callers check; clamping keeps them so.
        return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                   ? std::numeric_limits<int64_t>::max()
                   : static_cast<int64_t>(u);
    }
    return std::nullopt;
}

std::optional<int64_t> python_int(std::string_view text) {
    size_t begin = 0;
    size_t end = text.size();
    const auto space = [](char c) {
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
    };
    while (begin < end && space(text[begin])) ++begin;
    while (end > begin && space(text[end - 1])) --end;
    bool negative = false;
    if (begin < end && (text[begin] == '+' || text[begin] == '-')) negative = text[begin++] == '-';
    if (begin == end) return std::nullopt;
    constexpr int64_t k_max = std::numeric_limits<int64_t>::max();
    int64_t value = 0;
    bool clamped = false;
    bool previous_digit = false;
    for (size_t i = begin; i < end; ++i) {
        const char c = text[i];
        if (c == '_') {
            if (!previous_digit || i + 1 == end) return std::nullopt;
            previous_digit = false;
            continue;
        }
        if (c < '0' || c > '9') return std::nullopt;
        previous_digit = true;
        if (value > (k_max - (c - '0')) / 10) {
            clamped = true;
        } else {
            value = value * 10 + (c - '0');
        }
    }
    if (clamped) value = k_max;
    return negative ? -value : value;
}

json parse_json(std::string_view text, const std::string& path) {
    if (text.size() >= 3 && std::memcmp(text.data(), "\xef\xbb\xbf", 3) == 0) {
        fail("{}: starts with a UTF-8 byte-order mark, which JSON readers refuse", path);
    }
    if (json_depth(text, k_max_json_depth) > k_max_json_depth) {
        fail("{}: arrays and objects nested deeper than {}, refused", path, k_max_json_depth);
    }
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::parse_error& e) {
        fail("{}: offset {}: not valid JSON: {}", path, e.byte > 0 ? e.byte - 1 : 0,
             json_reason(e));
    } catch (const json::exception& e) {
        fail("{}: not valid JSON: {}", path, json_reason(e));
    }
}

std::vector<std::string> key_order(std::string_view text, std::string_view member) {
    KeyOrderSax sax(member);
    try {
        json::sax_parse(text.begin(), text.end(), &sax);
    } catch (const json::exception&) {
        // the text was parsed before; nothing to add
    }
    return sax.take();
}

std::string describe(const json& value) {
    switch (value.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "an integer";
        case json::value_t::number_float:
            return "a number";
        case json::value_t::string:
            return "a string";
        case json::value_t::array:
            return "an array";
        case json::value_t::object:
            return "an object";
        default:
            return "not a JSON value";
    }
}

bool valid_utf8(std::string_view text) {
    size_t i = 0;
    const size_t n = text.size();
    while (i < n) {
        const auto b0 = static_cast<unsigned char>(text[i]);
        if (b0 < 0x80) {
            ++i;
            continue;
        }
        int extra;
        uint32_t min;
        uint32_t cp;
        if (b0 >= 0xc2 && b0 <= 0xdf) {
            extra = 1, min = 0x80, cp = b0 & 0x1f;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            extra = 2, min = 0x800, cp = b0 & 0x0f;
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            extra = 3, min = 0x10000, cp = b0 & 0x07;
        } else {
            return false;
        }
        if (n - i <= static_cast<size_t>(extra)) return false;
        for (int k = 1; k <= extra; ++k) {
            const auto b = static_cast<unsigned char>(text[i + k]);
            if ((b & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += extra + 1;
    }
    return true;
}

std::string universal_newlines(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r') {
            out += '\n';
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::vector<std::string> python_split(std::string_view text) {
    std::vector<std::string> parts;
    size_t i = 0;
    size_t start = std::string_view::npos;
    while (i < text.size()) {
        const size_t at = i;
        const bool space = python_space(next_code_point(text, i));
        if (space && start != std::string_view::npos) {
            parts.emplace_back(text.substr(start, at - start));
            start = std::string_view::npos;
        } else if (!space && start == std::string_view::npos) {
            start = at;
        }
    }
    if (start != std::string_view::npos) parts.emplace_back(text.substr(start));
    return parts;
}

std::string python_strip(std::string_view text) {
    size_t i = 0;
    size_t first = std::string_view::npos;
    size_t last_end = 0;
    while (i < text.size()) {
        const size_t at = i;
        if (!python_space(next_code_point(text, i))) {
            if (first == std::string_view::npos) first = at;
            last_end = i;
        }
    }
    return first == std::string_view::npos ? std::string()
                                           : std::string(text.substr(first, last_end - first));
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    size_t at = 0;
    while (true) {
        const size_t found = text.find(from, at);
        if (found == std::string_view::npos) break;
        out.append(text.substr(at, found - at)).append(to);
        at = found + from.size();
    }
    out.append(text.substr(at));
    return out;
}

bool looks_special(std::string_view token) {
    if (token == "<pad>" || token == "<mask>" || token == "<2mass>" || token == "[@BOS@]") {
        return true;
    }
    return (token.starts_with("<|") && token.ends_with("|>")) ||
           (token.starts_with("<\xef\xbd\x9c") && token.ends_with("\xef\xbd\x9c>")) ||  // <｜ ｜>
           (token.starts_with("<unused") && token.ends_with(">"));
}

std::string shown(std::string_view text) {
    constexpr size_t k_max_shown = 80;
    std::string out;
    for (const char c : text.substr(0, k_max_shown)) {
        const auto u = static_cast<unsigned char>(c);
        out += u < 0x20 || u == 0x7f ? fmt::format("\\x{:02x}", u) : std::string(1, c);
    }
    if (text.size() > k_max_shown) out += "...";
    return out;
}

void KeyList::set(const std::string& key, GgufValue value) {
    if (const auto it = index_.find(key); it != index_.end()) {
        items_[it->second].second = std::move(value);
        return;
    }
    index_.emplace(key, items_.size());
    items_.emplace_back(key, std::move(value));
}

void KeyList::set_string(const std::string& key, std::string value) {
    if (!value.empty()) set(key, GgufValue::make_string(std::move(value)));
}

void KeyList::set_uint32(const std::string& key, int64_t value) {
    if (value < 0 || value > std::numeric_limits<uint32_t>::max()) {
        fail("{}: token id {} does not fit the UINT32 it is written as", key, value);
    }
    set(key, GgufValue::make_uint32(static_cast<uint32_t>(value)));
}

void KeyList::set_strings(const std::string& key, std::vector<std::string> values) {
    if (!values.empty()) set(key, GgufValue::make_string_array(std::move(values)));
}

void KeyList::set_floats(const std::string& key, const std::vector<float>& values) {
    if (!values.empty()) {
        set(key, GgufValue::make_numeric_array<float>(GgufType::float32, values));
    }
}

void KeyList::set_int32s(const std::string& key, const std::vector<int32_t>& values) {
    if (!values.empty()) {
        set(key, GgufValue::make_numeric_array<int32_t>(GgufType::int32, values));
    }
}

std::string Sources::path(std::string_view name) const {
    return (std::filesystem::path(input_.dir) / std::filesystem::path(name)).string();
}

const json* Sources::tokenizer_json() {
    if (!files_.tokenizer_json) return nullptr;
    if (!tokenizer_json_)
        tokenizer_json_ = parse_json(*files_.tokenizer_json, path("tokenizer.json"));
    return &*tokenizer_json_;
}

const json* Sources::tokenizer_config() {
    if (!files_.tokenizer_config_json) return nullptr;
    if (!tokenizer_config_) {
        const std::string where = path("tokenizer_config.json");
        json parsed = parse_json(*files_.tokenizer_config_json, where);
        if (!parsed.is_object()) fail("{}: is {}, expected an object", where, describe(parsed));
        tokenizer_config_ = std::move(parsed);
    }
    return &*tokenizer_config_;
}

}  // namespace edgeq::hf_tokenizer
