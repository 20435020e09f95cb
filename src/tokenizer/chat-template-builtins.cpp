// Chat templates: the filters, tests, methods and global functions templates call, each with
// the result Python's jinja2 (and str / dict) would give.
#include <utf8proc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "chat-template-interp.h"
#include "edgeq/core/error.h"

namespace edgeq::jinja {
namespace {

char32_t to_upper(char32_t c) {
    return c < 0x80 ? static_cast<char32_t>(std::toupper(static_cast<int>(c)))
                    : static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
}
char32_t to_lower(char32_t c) {
    return c < 0x80 ? static_cast<char32_t>(std::tolower(static_cast<int>(c)))
                    : static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}
bool is_cased(char32_t c) {
    return to_upper(c) != c || to_lower(c) != c;
}

template <typename F>
std::string map_chars(const std::string& s, F&& f) {
    std::vector<char32_t> cps = code_points(s);
    for (size_t k = 0; k < cps.size(); ++k) cps[k] = f(k, cps[k], k > 0 ? cps[k - 1] : 0);
    return from_code_points(cps.data(), cps.data() + cps.size());
}

// str.strip / lstrip / rstrip: whitespace, or any of `chars`.
std::string strip(const std::string& s, const std::optional<Value>& chars, bool left, bool right) {
    const std::vector<char32_t> cps = code_points(s);
    std::vector<char32_t> set;
    const bool use_set = chars && chars->is_string();
    if (use_set) set = code_points(chars->s);
    auto strippable = [&](char32_t c) {
        return use_set ? std::find(set.begin(), set.end(), c) != set.end() : is_python_space(c);
    };
    size_t begin = 0, end = cps.size();
    if (left)
        while (begin < end && strippable(cps[begin])) ++begin;
    if (right)
        while (end > begin && strippable(cps[end - 1])) --end;
    return from_code_points(cps.data() + begin, cps.data() + end);
}

List split(const std::string& s, const std::optional<Value>& sep_v, int64_t max_split) {
    List parts;
    if (!sep_v || sep_v->is_none()) {  // runs of whitespace; no empty parts
        const std::vector<char32_t> cps = code_points(s);
        size_t k = 0;
        while (true) {
            while (k < cps.size() && is_python_space(cps[k])) ++k;
            if (k == cps.size()) break;
            size_t end = k;
            if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
                end = cps.size();
                while (end > k && is_python_space(cps[end - 1])) --end;
            } else {
                while (end < cps.size() && !is_python_space(cps[end])) ++end;
            }
            parts.push_back(Value::string(from_code_points(cps.data() + k, cps.data() + end)));
            k = end;
        }
        return parts;
    }
    if (!sep_v->is_string() || sep_v->s.empty()) fail("split: empty or non-string separator");
    const std::string& sep = sep_v->s;
    size_t start = 0;
    while (true) {
        const size_t found = s.find(sep, start);
        if (found == std::string::npos ||
            (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split))
            break;
        parts.push_back(Value::string(s.substr(start, found - start)));
        start = found + sep.size();
    }
    parts.push_back(Value::string(s.substr(start)));
    return parts;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count, size_t max_bytes) {
    std::string out;
    size_t start = 0;
    int64_t done = 0;
    if (from.empty()) {  // Python inserts `to` around every character
        const std::vector<char32_t> cps = code_points(s);
        for (size_t k = 0; k <= cps.size(); ++k) {
            if (count < 0 || done < count) {
                out += to;
                ++done;
            }
            if (k < cps.size()) out += from_code_points(&cps[k], &cps[k] + 1);
            if (out.size() > max_bytes) fail("replace: result longer than {} bytes", max_bytes);
        }
        return out;
    }
    while (count < 0 || done < count) {
        const size_t found = s.find(from, start);
        if (found == std::string::npos) break;
        out.append(s, start, found - start);
        out += to;
        if (out.size() > max_bytes) fail("replace: result longer than {} bytes", max_bytes);
        start = found + from.size();
        ++done;
    }
    out.append(s, start);
    return out;
}

int64_t as_int(const Value& v, const char* what) {
    if (v.kind == Value::Kind::integer) return v.i;
    if (v.kind == Value::Kind::boolean) return v.b;
    fail("{} must be an integer, got {}", what, to_repr(v));
}

}  // namespace

std::optional<Value> Renderer::Args::get(size_t index, const char* name) const {
    for (const auto& [k, v] : kwargs)
        if (k == name) return v;
    if (index < positional.size()) return positional[index];
    return std::nullopt;
}

bool Renderer::is_global(const std::string& name) {
    return name == "range" || name == "namespace" || name == "raise_exception" ||
           name == "strftime_now" || name == "dict";
}

bool Renderer::is_dict_method(const std::string& name) {
    return name == "items" || name == "keys" || name == "values" || name == "get";
}

int64_t Renderer::length(const Value& v) {
    switch (v.kind) {
        case Value::Kind::undefined:
            return 0;
        case Value::Kind::string:
            return static_cast<int64_t>(code_points(v.s).size());
        case Value::Kind::list:
            return static_cast<int64_t>(v.list->size());
        case Value::Kind::dict:
            return static_cast<int64_t>(v.dict->items.size());
        default:
            fail_at(fmt::format("object of type '{}' has no len()", to_repr(v)));
    }
}

Value Renderer::call_global(const std::string& name, Args& args) {
    if (name == "raise_exception") {
        const std::optional<Value> message = args.get(0, "message");
        fail("chat template: line {}: raise_exception: {}", line_,
             message ? to_str(*message) : std::string());
    }
    if (name == "namespace" || name == "dict") {
        Value ns = Value::make_dict();
        ns.is_namespace = name == "namespace";
        for (const Value& p : args.positional) {
            if (p.kind != Value::Kind::dict) fail_at(name + "() takes a mapping or keywords");
            for (const auto& [k, v] : p.dict->items) ns.dict->set(k, v);
        }
        for (auto& [k, v] : args.kwargs) ns.dict->set(k, v);
        return ns;
    }
    if (name == "range") {
        int64_t start = 0, stop = 0, stride = 1;
        const auto n = args.positional.size();
        if (n == 1) {
            stop = as_int(args.positional[0], "range() argument");
        } else if (n == 2 || n == 3) {
            start = as_int(args.positional[0], "range() argument");
            stop = as_int(args.positional[1], "range() argument");
            if (n == 3) stride = as_int(args.positional[2], "range() argument");
        } else {
            fail_at("range() takes 1 to 3 arguments");
        }
        if (stride == 0) fail_at("range() step must not be zero");
        List items;
        for (int64_t i = start; stride > 0 ? i < stop : i > stop; i += stride) {
            const size_t max_items = std::min<size_t>(limits_.max_output_bytes, 1 << 20);
            if (items.size() >= max_items)
                fail_at(fmt::format("range() of more than {} items", max_items));
            step(line_);
            items.push_back(Value::integer(i));
            if ((stride > 0 && i > INT64_MAX - stride) || (stride < 0 && i < INT64_MIN - stride))
                break;
        }
        return Value::make_list(std::move(items));
    }
    if (name == "strftime_now") {
        const std::optional<Value> format = args.get(0, "format");
        if (!format || !format->is_string()) fail_at("strftime_now() takes a format string");
        const std::time_t now =
            std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
        std::tm local{};
        localtime_r(&now, &local);
        char buf[256];
        const size_t n = std::strftime(buf, sizeof buf, format->s.c_str(), &local);
        return Value::string(std::string(buf, n));
    }
    fail_at("unknown function '" + name + "'");
}

Value Renderer::call_method(const Value& self, const std::string& name, Args& args) {
    if (self.is_undefined()) fail_at("'" + self.s + "' is undefined");
    if (self.is_string()) {
        const std::string& s = self.s;
        if (name == "strip" || name == "lstrip" || name == "rstrip") {
            return Value::string(
                strip(s, args.get(0, "chars"), name != "rstrip", name != "lstrip"));
        }
        if (name == "startswith" || name == "endswith") {
            const std::optional<Value> arg = args.get(0, "prefix");
            if (!arg) fail_at(name + "() takes an argument");
            List options = arg->kind == Value::Kind::list ? *arg->list : List{*arg};
            for (const Value& o : options) {
                if (!o.is_string()) fail_at(name + "() takes strings");
                const bool hit = name == "startswith"
                                     ? s.compare(0, o.s.size(), o.s) == 0
                                     : s.size() >= o.s.size() &&
                                           s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0;
                if (hit) return Value::boolean(true);
            }
            return Value::boolean(false);
        }
        if (name == "split") {
            const std::optional<Value> max = args.get(1, "maxsplit");
            return Value::make_list(
                split(s, args.get(0, "sep"), max ? as_int(*max, "maxsplit") : -1));
        }
        if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
            return apply_filter(name, self, Args{});
        }
        if (name == "replace") {
            const std::optional<Value> from = args.get(0, "old"), to = args.get(1, "new");
            const std::optional<Value> count = args.get(2, "count");
            if (!from || !to || !from->is_string() || !to->is_string())
                fail_at("replace() takes two strings");
            return Value::string(replace(s, from->s, to->s, count ? as_int(*count, "count") : -1,
                                         limits_.max_output_bytes));
        }
        if (name == "find") {
            const std::optional<Value> sub = args.get(0, "sub");
            if (!sub || !sub->is_string()) fail_at("find() takes a string");
            const size_t at = s.find(sub->s);
            if (at == std::string::npos) return Value::integer(-1);
            return Value::integer(static_cast<int64_t>(code_points(s.substr(0, at)).size()));
        }
        if (name == "join") {
            const std::optional<Value> items = args.get(0, "iterable");
            if (!items) fail_at("join() takes an argument");
            std::string out;
            bool first = true;
            for (const Value& v : iterate(*items)) {
                if (!v.is_string()) fail_at("join() takes strings");
                if (!first) out += s;
                first = false;
                out += v.s;
                check_size(out.size());
            }
            return Value::string(std::move(out));
        }
    }
    if (self.kind == Value::Kind::dict) {
        if (name == "cycle") {  // loop.cycle(a, b, ...)
            const Value* index = self.dict->find("index0");
            if (index == nullptr || args.positional.empty()) fail_at("cycle() needs arguments");
            return args.positional[static_cast<size_t>(index->i) % args.positional.size()];
        }
        if (name == "items" || name == "keys" || name == "values") {
            List out;
            for (const auto& [k, v] : self.dict->items) {
                if (name == "items") {
                    out.push_back(Value::make_list({Value::string(k), v}));
                } else {
                    out.push_back(name == "keys" ? Value::string(k) : v);
                }
            }
            return Value::make_list(std::move(out));
        }
        if (name == "get") {
            const std::optional<Value> key = args.get(0, "key");
            if (!key) fail_at("get() takes a key");
            if (key->is_string()) {
                if (const Value* found = self.dict->find(key->s)) return *found;
            }
            return args.get(1, "default").value_or(Value::none());
        }
    }
    if (self.kind == Value::Kind::list &&
        (name == "append" || name == "pop" || name == "insert" || name == "extend" ||
         name == "remove" || name == "clear" || name == "sort" || name == "reverse")) {
        fail_at("lists cannot be modified (" + name + "): templates run in an immutable sandbox");
    }
    fail_at(fmt::format("unsupported method '{}' of {}", name, to_repr(self).substr(0, 40)));
}

Value Renderer::apply_filter(const std::string& name, Value input, const Args& args) {
    if (name == "default" || name == "d") {
        const std::optional<Value> boolean = args.get(1, "boolean");
        const bool use_default =
            input.is_undefined() || (boolean && boolean->truthy() && !input.truthy());
        return use_default ? args.get(0, "default_value").value_or(Value::string("")) : input;
    }
    if (name == "length" || name == "count") return Value::integer(length(input));
    if (name == "tojson") {
        const std::optional<Value> indent = args.get(0, "indent");
        const int n =
            indent && !indent->is_none() ? static_cast<int>(as_int(*indent, "indent")) : -1;
        std::string json = to_json(input, std::clamp(n, -1, 64));
        check_size(json.size());
        return Value::string(std::move(json));
    }
    if (name == "list") return Value::make_list(iterate(input));
    if (name == "items") {
        if (input.is_undefined()) return Value::make_list();
        if (input.kind != Value::Kind::dict) fail_at("items filter takes a mapping");
        Args none;
        return call_method(input, "items", none);
    }
    if (name == "first" || name == "last") {
        const List items = iterate(input);
        if (items.empty()) return Value::undefined();
        return name == "first" ? items.front() : items.back();
    }
    if (name == "reverse") {
        if (input.is_string()) {
            std::vector<char32_t> cps = code_points(input.s);
            std::reverse(cps.begin(), cps.end());
            return Value::string(from_code_points(cps.data(), cps.data() + cps.size()));
        }
        List items = iterate(input);
        std::reverse(items.begin(), items.end());
        return Value::make_list(std::move(items));
    }
    if (name == "join") {
        const std::string sep = to_str(args.get(0, "d").value_or(Value::string("")));
        const std::optional<Value> attribute = args.get(1, "attribute");
        std::string out;
        bool first = true;
        for (const Value& v : iterate(input)) {
            if (!first) out += sep;
            first = false;
            out += to_str(attribute ? get_item(v, *attribute) : v);
            check_size(out.size());
        }
        return Value::string(std::move(out));
    }
    if (name == "selectattr" || name == "rejectattr") {
        const std::optional<Value> attribute = args.get(0, "attribute");
        if (!attribute || !attribute->is_string()) fail_at(name + " takes an attribute name");
        Args test_args;
        for (size_t k = 2; k < args.positional.size(); ++k)
            test_args.positional.push_back(args.positional[k]);
        List out;
        for (const Value& v : iterate(input)) {
            const Value field = v.kind == Value::Kind::dict ? get_attr(v, attribute->s)
                                                            : Value::undefined(attribute->s);
            bool keep = args.positional.size() > 1
                            ? apply_test(to_str(args.positional[1]), field, test_args)
                            : field.truthy();
            if (keep == (name == "selectattr")) out.push_back(v);
        }
        return Value::make_list(std::move(out));
    }
    if (name == "select" || name == "reject") {
        Args test_args;
        for (size_t k = 1; k < args.positional.size(); ++k)
            test_args.positional.push_back(args.positional[k]);
        List out;
        for (const Value& v : iterate(input)) {
            const bool pass = args.positional.empty()
                                  ? v.truthy()
                                  : apply_test(to_str(args.positional[0]), v, test_args);
            if (pass == (name == "select")) out.push_back(v);
        }
        return Value::make_list(std::move(out));
    }
    if (name == "map") {
        List out;
        if (const std::optional<Value> attribute = args.get(99, "attribute")) {
            const std::optional<Value> def = args.get(99, "default");
            for (const Value& v : iterate(input)) {
                Value field = get_item(v, *attribute);
                out.push_back(field.is_undefined() && def ? *def : field);
            }
        } else {
            if (args.positional.empty()) fail_at("map needs a filter name or attribute=");
            Args rest;
            rest.positional.assign(args.positional.begin() + 1, args.positional.end());
            for (const Value& v : iterate(input))
                out.push_back(apply_filter(to_str(args.positional[0]), v, rest));
        }
        return Value::make_list(std::move(out));
    }
    if (name == "unique") {
        List out;
        for (const Value& v : iterate(input)) {
            if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return equals(o, v); }))
                out.push_back(v);
        }
        return Value::make_list(std::move(out));
    }
    if (name == "safe") return input;
    if (name == "string") return Value::string(to_str(input));
    if (name == "abs") {
        if (input.kind == Value::Kind::number) return Value::number(std::fabs(input.f));
        const int64_t i = as_int(input, "abs() argument");
        if (i == INT64_MIN) fail_at("integer overflow");
        return Value::integer(i < 0 ? -i : i);
    }
    if (name == "int") {
        if (input.kind == Value::Kind::integer || input.kind == Value::Kind::boolean)
            return Value::integer(as_int(input, "int"));
        if (input.kind == Value::Kind::number && std::isfinite(input.f) &&
            std::fabs(input.f) < 9.2e18)
            return Value::integer(static_cast<int64_t>(input.f));
        if (input.is_string()) {
            const std::string t = strip(input.s, std::nullopt, true, true);
            char* end = nullptr;
            errno = 0;
            const long long v = std::strtoll(t.c_str(), &end, 10);
            if (!t.empty() && end == t.c_str() + t.size() && errno == 0) return Value::integer(v);
            const double d = std::strtod(t.c_str(), &end);
            if (!t.empty() && end == t.c_str() + t.size() && std::fabs(d) < 9.2e18)
                return Value::integer(static_cast<int64_t>(d));
        }
        return args.get(0, "default").value_or(Value::integer(0));
    }
    if (name == "float") {
        if (input.is_numeric()) return Value::number(as_double(input));
        if (input.is_string()) {
            const std::string t = strip(input.s, std::nullopt, true, true);
            char* end = nullptr;
            const double d = std::strtod(t.c_str(), &end);
            if (!t.empty() && end == t.c_str() + t.size()) return Value::number(d);
        }
        return args.get(0, "default").value_or(Value::number(0.0));
    }
    // String filters from here on: jinja2 applies them to str(input).
    const std::string s = to_str(input);
    if (name == "trim") return Value::string(strip(s, args.get(0, "chars"), true, true));
    if (name == "upper")
        return Value::string(
            map_chars(s, [](size_t, char32_t c, char32_t) { return to_upper(c); }));
    if (name == "lower")
        return Value::string(
            map_chars(s, [](size_t, char32_t c, char32_t) { return to_lower(c); }));
    if (name == "capitalize") {
        return Value::string(map_chars(
            s, [](size_t k, char32_t c, char32_t) { return k == 0 ? to_upper(c) : to_lower(c); }));
    }
    if (name == "title") {
        return Value::string(map_chars(s, [](size_t, char32_t c, char32_t prev) {
            return prev != 0 && is_cased(prev) ? to_lower(c) : to_upper(c);
        }));
    }
    if (name == "replace") {
        const std::optional<Value> from = args.get(0, "old"), to = args.get(1, "new");
        const std::optional<Value> count = args.get(2, "count");
        if (!from || !to) fail_at("replace takes two arguments");
        return Value::string(replace(s, to_str(*from), to_str(*to),
                                     count && !count->is_none() ? as_int(*count, "count") : -1,
                                     limits_.max_output_bytes));
    }
    fail_at("unsupported filter '" + name + "'");
}

bool Renderer::apply_test(const std::string& name, const Value& v, const Args& args) {
    using K = Value::Kind;
    auto arg = [&]() -> Value {
        const std::optional<Value> a = args.get(0, "other");
        if (!a) fail_at("test '" + name + "' needs an argument");
        return *a;
    };
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_numeric();
    if (name == "integer") return v.kind == K::integer;
    if (name == "float") return v.kind == K::number;
    if (name == "boolean") return v.kind == K::boolean;
    if (name == "true") return v.kind == K::boolean && v.b;
    if (name == "false") return v.kind == K::boolean && !v.b;
    if (name == "mapping") return v.kind == K::dict && !v.is_namespace;
    if (name == "iterable") {
        return v.is_string() || v.kind == K::list || (v.kind == K::dict && !v.is_namespace) ||
               v.is_undefined();
    }
    if (name == "sequence") {
        return v.is_string() || v.kind == K::list || (v.kind == K::dict && !v.is_namespace) ||
               v.is_undefined();
    }
    if (name == "callable") return v.kind == K::function || v.kind == K::macro;
    if (name == "odd" || name == "even") {
        const int64_t i = as_int(v, "odd/even test argument");
        return (i % 2 != 0) == (name == "odd");
    }
    if (name == "divisibleby") {
        const int64_t d = as_int(arg(), "divisibleby argument");
        if (d == 0) fail_at("integer division or modulo by zero");
        return as_int(v, "divisibleby test argument") % d == 0;
    }
    if (name == "eq" || name == "equalto" || name == "==") return equals(v, arg());
    if (name == "ne" || name == "!=") return !equals(v, arg());
    if (name == "sameas") {
        const Value o = arg();
        if (v.kind != o.kind) return false;
        if (v.kind == K::list) return v.list == o.list;
        if (v.kind == K::dict) return v.dict == o.dict;
        return equals(v, o);
    }
    if (name == "lt" || name == "<") return compare(v, arg()) < 0;
    if (name == "le" || name == "<=") return compare(v, arg()) <= 0;
    if (name == "gt" || name == ">") return compare(v, arg()) > 0;
    if (name == "ge" || name == ">=") return compare(v, arg()) >= 0;
    if (name == "in") return contains(arg(), v);
    if (name == "lower" || name == "upper") {
        const std::string s = to_str(v);
        const Value converted = apply_filter(name, v, Args{});
        bool cased = false;
        for (char32_t c : code_points(s)) cased |= is_cased(c);
        return cased && converted.s == s;
    }
    fail_at("unsupported test '" + name + "'");
}

}  // namespace edgeq::jinja
