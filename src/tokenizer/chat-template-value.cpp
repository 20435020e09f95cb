// Chat templates: values as Python sees them (str, repr, ==, <, json.dumps).
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>

#include "chat-template-internal.h"
#include "edgeq/core/error.h"
#include "unicode.h"

namespace edgeq::jinja {

Value Value::undefined(std::string name) {
    Value v;
    v.s = std::move(name);
    return v;
}
Value Value::none() {
    Value v;
    v.kind = Kind::none;
    return v;
}
Value Value::boolean(bool b) {
    Value v;
    v.kind = Kind::boolean;
    v.b = b;
    return v;
}
Value Value::integer(int64_t i) {
    Value v;
    v.kind = Kind::integer;
    v.i = i;
    return v;
}
Value Value::number(double f) {
    Value v;
    v.kind = Kind::number;
    v.f = f;
    return v;
}
Value Value::string(std::string s) {
    Value v;
    v.kind = Kind::string;
    v.s = std::move(s);
    return v;
}
Value Value::make_list(List items) {
    Value v;
    v.kind = Kind::list;
    v.list = std::make_shared<List>(std::move(items));
    return v;
}
Value Value::make_dict() {
    Value v;
    v.kind = Kind::dict;
    v.dict = std::make_shared<Dict>();
    return v;
}
Value Value::function(std::string name) {
    Value v;
    v.kind = Kind::function;
    v.s = std::move(name);
    return v;
}

bool Value::truthy() const {
    switch (kind) {
        case Kind::undefined:
        case Kind::none:
            return false;
        case Kind::boolean:
            return b;
        case Kind::integer:
            return i != 0;
        case Kind::number:
            return f != 0.0;
        case Kind::string:
            return !s.empty();
        case Kind::list:
            return !list->empty();
        case Kind::dict:
            return is_namespace || !dict->items.empty();
        default:
            return true;
    }
}

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k == key) return &v;
    return nullptr;
}

void Dict::set(const std::string& key, Value value) {
    for (auto& [k, v] : items) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    items.emplace_back(key, std::move(value));
}

std::vector<char32_t> code_points(std::string_view s) {
    std::vector<char32_t> out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        char32_t cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
        bool ok = n >= 0 && i + static_cast<size_t>(n) < s.size() + (n == 0 ? 1 : 0);
        for (int k = 1; ok && k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
            ok = (cc & 0xc0) == 0x80;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (!ok) {
            out.push_back(0xfffd);
            ++i;
        } else {
            out.push_back(cp);
            i += static_cast<size_t>(n) + 1;
        }
    }
    return out;
}

std::string from_code_points(const char32_t* begin, const char32_t* end) {
    std::string out;
    for (const char32_t* p = begin; p != end; ++p)
        unicode::append_utf8(out, static_cast<uint32_t>(*p));
    return out;
}

bool is_python_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

namespace {

// Python's repr() of a float: the shortest digits that round-trip, positional for
// exponents in [-4, 16), otherwise d.ddde+XX.
std::string float_repr(double f) {
    if (std::isnan(f)) return "nan";
    if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    std::string sci(buf, r.ptr);
    const size_t e_pos = sci.find('e');
    std::string mantissa = sci.substr(0, e_pos);
    const int exponent = std::stoi(sci.substr(e_pos + 1));
    const bool negative = mantissa[0] == '-';
    if (negative) mantissa.erase(0, 1);
    std::string digits;
    for (char c : mantissa)
        if (c != '.') digits += c;
    std::string out;
    if (negative) out.push_back('-');
    if (exponent >= -4 && exponent < 16) {
        const auto point = static_cast<size_t>(exponent + 1);  // digits before the point
        if (exponent < 0) {
            out.append("0.");
            out.append(static_cast<size_t>(-exponent - 1), '0');
            out.append(digits);
        } else if (point >= digits.size()) {
            out.append(digits);
            out.append(point - digits.size(), '0');
            out.append(".0");
        } else {
            out.append(digits, 0, point);
            out.push_back('.');
            out.append(digits, point, std::string::npos);
        }
        return out;
    }
    out.push_back(digits[0]);
    if (digits.size() > 1) {
        out.push_back('.');
        out.append(digits, 1, std::string::npos);
    }
    out.append(fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent)));
    return out;
}

std::string string_repr(const std::string& s) {
    const bool has_single = s.find('\'') != std::string::npos;
    const bool has_double = s.find('"') != std::string::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out(1, quote);
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == quote || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (ch == '\n') {
            out += "\\n";
        } else if (ch == '\r') {
            out += "\\r";
        } else if (ch == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += ch;
        }
    }
    out += quote;
    return out;
}

const char* type_name(const Value& v) {
    switch (v.kind) {
        case Value::Kind::undefined:
            return "Undefined";
        case Value::Kind::none:
            return "NoneType";
        case Value::Kind::boolean:
            return "bool";
        case Value::Kind::integer:
            return "int";
        case Value::Kind::number:
            return "float";
        case Value::Kind::string:
            return "str";
        case Value::Kind::list:
            return "list";
        case Value::Kind::dict:
            return v.is_namespace ? "Namespace" : "dict";
        default:
            return "function";
    }
}

void json_string(std::string& out, const std::string& s) {
    out += '"';
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    out += fmt::format("\\u{:04x}", c);
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
}

void json_value(std::string& out, const Value& v, int indent, int level) {
    auto newline = [&](int l) {
        if (indent >= 0) {
            out += '\n';
            out.append(static_cast<size_t>(indent) * static_cast<size_t>(l), ' ');
        }
    };
    const char* item_sep = indent >= 0 ? "," : ", ";
    switch (v.kind) {
        case Value::Kind::none:
            out += "null";
            return;
        case Value::Kind::boolean:
            out += v.b ? "true" : "false";
            return;
        case Value::Kind::integer:
            out += std::to_string(v.i);
            return;
        case Value::Kind::number:
            if (std::isnan(v.f)) {
                out += "NaN";
            } else if (std::isinf(v.f)) {
                out += v.f > 0 ? "Infinity" : "-Infinity";
            } else {
                out += float_repr(v.f);
            }
            return;
        case Value::Kind::string:
            json_string(out, v.s);
            return;
        case Value::Kind::list:
            if (v.list->empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t k = 0; k < v.list->size(); ++k) {
                if (k > 0) out += item_sep;
                newline(level + 1);
                json_value(out, (*v.list)[k], indent, level + 1);
            }
            newline(level);
            out += ']';
            return;
        case Value::Kind::dict:
            if (!v.is_namespace) {
                if (v.dict->items.empty()) {
                    out += "{}";
                    return;
                }
                out += '{';
                bool first = true;
                for (const auto& [key, value] : v.dict->items) {
                    if (!first) out += item_sep;
                    first = false;
                    newline(level + 1);
                    json_string(out, key);
                    out += ": ";
                    json_value(out, value, indent, level + 1);
                }
                newline(level);
                out += '}';
                return;
            }
            [[fallthrough]];
        default:
            fail("Object of type {} is not JSON serializable", type_name(v));
    }
}

}  // namespace

std::string to_repr(const Value& v) {
    switch (v.kind) {
        case Value::Kind::string:
            return string_repr(v.s);
        case Value::Kind::list: {
            std::string out = "[";
            for (size_t k = 0; k < v.list->size(); ++k) {
                if (k > 0) out += ", ";
                out += to_repr((*v.list)[k]);
            }
            return out + "]";
        }
        case Value::Kind::dict: {
            std::string out = v.is_namespace ? "<Namespace {" : "{";
            bool first = true;
            for (const auto& [key, value] : v.dict->items) {
                if (!first) out += ", ";
                first = false;
                out += string_repr(key) + ": " + to_repr(value);
            }
            return out + (v.is_namespace ? "}>" : "}");
        }
        default:
            return to_str(v);
    }
}

std::string to_str(const Value& v) {
    switch (v.kind) {
        case Value::Kind::undefined:
            return "";
        case Value::Kind::none:
            return "None";
        case Value::Kind::boolean:
            return v.b ? "True" : "False";
        case Value::Kind::integer:
            return std::to_string(v.i);
        case Value::Kind::number:
            return float_repr(v.f);
        case Value::Kind::string:
            return v.s;
        case Value::Kind::list:
        case Value::Kind::dict:
            return to_repr(v);
        case Value::Kind::function:
            return "<function " + v.s + ">";
        case Value::Kind::macro:
            return "<Macro>";
    }
    return "";
}

std::string to_json(const Value& v, int indent) {
    std::string out;
    json_value(out, v, indent, 0);
    return out;
}

double as_double(const Value& v) {
    switch (v.kind) {
        case Value::Kind::boolean:
            return v.b ? 1.0 : 0.0;
        case Value::Kind::integer:
            return static_cast<double>(v.i);
        case Value::Kind::number:
            return v.f;
        default:
            fail("expected a number, got {}", type_name(v));
    }
}

bool equals(const Value& a, const Value& b) {
    if (a.is_numeric() && b.is_numeric()) {
        if (a.kind != Value::Kind::number && b.kind != Value::Kind::number) {
            return (a.kind == Value::Kind::boolean ? a.b : a.i) ==
                   (b.kind == Value::Kind::boolean ? b.b : b.i);
        }
        return as_double(a) == as_double(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case Value::Kind::undefined:
        case Value::Kind::none:
            return true;
        case Value::Kind::string:
            return a.s == b.s;
        case Value::Kind::list:
            if (a.list->size() != b.list->size()) return false;
            for (size_t k = 0; k < a.list->size(); ++k)
                if (!equals((*a.list)[k], (*b.list)[k])) return false;
            return true;
        case Value::Kind::dict:
            if (a.is_namespace || b.is_namespace) return a.dict == b.dict;
            if (a.dict->items.size() != b.dict->items.size()) return false;
            for (const auto& [key, value] : a.dict->items) {
                const Value* other = b.dict->find(key);
                if (other == nullptr || !equals(value, *other)) return false;
            }
            return true;
        case Value::Kind::function:
            return a.s == b.s;
        default:
            return a.macro == b.macro;
    }
}

int compare(const Value& a, const Value& b) {
    if (a.is_numeric() && b.is_numeric()) {
        if (a.kind != Value::Kind::number && b.kind != Value::Kind::number) {
            const int64_t x = a.kind == Value::Kind::boolean ? a.b : a.i;
            const int64_t y = b.kind == Value::Kind::boolean ? b.b : b.i;
            return x < y ? -1 : x > y ? 1 : 0;
        }
        const double x = as_double(a), y = as_double(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
    if (a.kind == Value::Kind::list && b.kind == Value::Kind::list) {
        for (size_t k = 0; k < a.list->size() && k < b.list->size(); ++k) {
            if (!equals((*a.list)[k], (*b.list)[k])) return compare((*a.list)[k], (*b.list)[k]);
        }
        return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
    }
    fail("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b));
}

Value from_json(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::json::value_t::null:
            return Value::none();
        case nlohmann::json::value_t::boolean:
            return Value::boolean(j.get<bool>());
        case nlohmann::json::value_t::number_integer:
            return Value::integer(j.get<int64_t>());
        case nlohmann::json::value_t::number_unsigned: {
            const auto u = j.get<uint64_t>();
            return u > static_cast<uint64_t>(INT64_MAX) ? Value::number(static_cast<double>(u))
                                                        : Value::integer(static_cast<int64_t>(u));
        }
        case nlohmann::json::value_t::number_float:
            return Value::number(j.get<double>());
        case nlohmann::json::value_t::string:
            return Value::string(j.get<std::string>());
        case nlohmann::json::value_t::array: {
            List items;
            for (const auto& e : j) items.push_back(from_json(e));
            return Value::make_list(std::move(items));
        }
        case nlohmann::json::value_t::object: {
            Value d = Value::make_dict();
            for (const auto& [key, value] : j.items()) d.dict->set(key, from_json(value));
            return d;
        }
        default:
            return Value::none();
    }
}

}  // namespace edgeq::jinja
