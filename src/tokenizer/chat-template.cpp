// Chat templates: the interpreter (statements, expressions, scopes) and the public API.
// Filters, tests, methods and globals are in chat-template-builtins.cpp.
#include "edgeq/tokenizer/chat-template.h"

#include <nlohmann/json.hpp>

#include "chat-template-interp.h"
#include "edgeq/core/error.h"

namespace edgeq::jinja {

Renderer::Renderer(const ChatTemplateLimits& limits) : limits_(limits) {
    scopes_.emplace_back();
}

void Renderer::fail_at(const std::string& message) const {
    fail("chat template: line {}: {}", line_, message);
}

void Renderer::step(int line) {
    line_ = line;
    if (++steps_ > limits_.max_steps)
        fail_at(fmt::format("more than {} evaluation steps", limits_.max_steps));
}

void Renderer::check_size(size_t n_bytes) const {
    if (n_bytes > limits_.max_output_bytes)
        fail_at(fmt::format("output longer than {} bytes", limits_.max_output_bytes));
}

Renderer::DepthGuard::DepthGuard(Renderer& r) : r(r) {
    if (++r.depth_ > r.limits_.max_depth)
        r.fail_at(fmt::format("nested deeper than {}", r.limits_.max_depth));
}

void Renderer::set_variable(const std::string& name, Value value) {
    for (auto& [k, v] : scopes_.back()) {
        if (k == name) {
            v = std::move(value);
            return;
        }
    }
    scopes_.back().emplace_back(name, std::move(value));
}

Value Renderer::lookup(const std::string& name) const {
    for (size_t s = scopes_.size(); s-- > 0;) {
        if (s < barrier_ && s > 0) continue;  // a macro sees its own scope and the template's
        for (const auto& [k, v] : scopes_[s])
            if (k == name) return v;
    }
    if (is_global(name)) return Value::function(name);
    return Value::undefined(name);
}

void Renderer::emit(std::string& out, const std::string& text) const {
    check_size(out.size() + text.size());
    out += text;
}

std::string Renderer::render(const Body& body) {
    std::string out;
    exec(body, out);
    return out;
}

Renderer::Flow Renderer::exec(const Body& body, std::string& out) {
    DepthGuard guard(*this);
    for (const auto& stmt : body) {
        const Flow flow = exec(*stmt, out);
        if (flow != Flow::normal) return flow;
    }
    return Flow::normal;
}

Renderer::Flow Renderer::exec(const Stmt& s, std::string& out) {
    step(s.line);
    switch (s.kind) {
        case Stmt::Kind::text:
            emit(out, s.text);
            break;
        case Stmt::Kind::output: {
            const Value v = eval(*s.expr);
            line_ = s.line;
            emit(out, to_str(v));
            break;
        }
        case Stmt::Kind::if_:
            for (const auto& [cond, body] : s.branches) {
                if (eval(*cond).truthy()) return exec(body, out);
            }
            return exec(s.else_body, out);
        case Stmt::Kind::for_:
            return exec_for(s, out);
        case Stmt::Kind::set: {
            Value v = eval(*s.expr);
            line_ = s.line;
            if (s.attribute.empty()) {
                set_variable(s.targets[0], std::move(v));
            } else {
                const Value ns = lookup(s.targets[0]);
                if (ns.kind != Value::Kind::dict || !ns.is_namespace)
                    fail_at("cannot assign attribute on non-namespace object '" + s.targets[0] +
                            "'");
                ns.dict->set(s.attribute, std::move(v));
            }
            break;
        }
        case Stmt::Kind::set_block: {
            std::string captured;
            exec(s.body, captured);
            set_variable(s.targets[0], Value::string(std::move(captured)));
            break;
        }
        case Stmt::Kind::macro: {
            Value m;
            m.kind = Value::Kind::macro;
            m.macro = s.macro;
            set_variable(s.macro->name, std::move(m));
            break;
        }
        case Stmt::Kind::break_:
            return Flow::break_;
        case Stmt::Kind::continue_:
            return Flow::continue_;
    }
    return Flow::normal;
}

List Renderer::iterate(const Value& v) {
    switch (v.kind) {
        case Value::Kind::undefined:
            return {};
        case Value::Kind::list:
            return *v.list;
        case Value::Kind::dict: {
            if (v.is_namespace) break;
            List keys;
            for (const auto& [k, value] : v.dict->items) keys.push_back(Value::string(k));
            return keys;
        }
        case Value::Kind::string: {
            List chars;
            const std::vector<char32_t> cps = code_points(v.s);
            for (const char32_t& c : cps)
                chars.push_back(Value::string(from_code_points(&c, &c + 1)));
            return chars;
        }
        default:
            break;
    }
    fail_at(fmt::format("'{}' object is not iterable", to_repr(v)));
}

Renderer::Flow Renderer::exec_for(const Stmt& s, std::string& out) {
    List items = iterate(eval(*s.expr));
    line_ = s.line;
    scopes_.emplace_back();
    struct Pop {
        ~Pop() { r.scopes_.pop_back(); }
        Renderer& r;
    } pop{*this};
    auto bind = [&](const Value& item) {
        if (s.targets.size() == 1) {
            set_variable(s.targets[0], item);
            return;
        }
        const List unpacked = iterate(item);
        if (unpacked.size() != s.targets.size())
            fail_at(fmt::format("cannot unpack {} values into {} names", unpacked.size(),
                                s.targets.size()));
        for (size_t k = 0; k < s.targets.size(); ++k) set_variable(s.targets[k], unpacked[k]);
    };
    if (s.cond) {  // the filter runs first: loop.* count only the items it keeps
        List kept;
        for (const Value& item : items) {
            bind(item);
            if (eval(*s.cond).truthy()) kept.push_back(item);
        }
        items = std::move(kept);
        scopes_.back().clear();
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
        step(s.line);
        Value loop = Value::make_dict();
        Dict& d = *loop.dict;
        d.set("index0", Value::integer(k));
        d.set("index", Value::integer(k + 1));
        d.set("revindex0", Value::integer(n - k - 1));
        d.set("revindex", Value::integer(n - k));
        d.set("first", Value::boolean(k == 0));
        d.set("last", Value::boolean(k == n - 1));
        d.set("length", Value::integer(n));
        d.set("depth", Value::integer(1));
        d.set("depth0", Value::integer(0));
        d.set("previtem", k > 0 ? items[static_cast<size_t>(k - 1)] : Value::undefined("previtem"));
        d.set("nextitem",
              k + 1 < n ? items[static_cast<size_t>(k + 1)] : Value::undefined("nextitem"));
        d.set("cycle", Value::function("loop.cycle"));
        set_variable("loop", std::move(loop));
        bind(items[static_cast<size_t>(k)]);
        if (exec(s.body, out) == Flow::break_) break;
    }
    if (n == 0) return exec(s.else_body, out);
    return Flow::normal;
}

Value Renderer::call_macro(const Macro& m, std::vector<Value> args,
                           std::vector<std::pair<std::string, Value>> kwargs) {
    DepthGuard guard(*this);
    if (args.size() > m.params.size())
        fail_at(fmt::format("macro '{}' takes {} arguments, got {}", m.name, m.params.size(),
                            args.size()));
    const size_t saved_barrier = barrier_;
    scopes_.emplace_back();
    barrier_ = scopes_.size() - 1;
    struct Restore {
        ~Restore() {
            r.scopes_.pop_back();
            r.barrier_ = saved;
        }
        Renderer& r;
        size_t saved;
    } restore{*this, saved_barrier};
    for (size_t k = 0; k < m.params.size(); ++k) {
        const auto& [name, def] = m.params[k];
        Value v = Value::undefined(name);
        if (k < args.size()) {
            v = std::move(args[k]);
        } else {
            bool found = false;
            for (auto& [kname, kvalue] : kwargs) {
                if (kname == name) {
                    v = std::move(kvalue);
                    found = true;
                }
            }
            if (!found && def) v = eval(*def);
        }
        set_variable(name, std::move(v));
    }
    std::string out;
    exec(m.body, out);
    return Value::string(std::move(out));
}

Value Renderer::eval(const Expr& e) {
    DepthGuard guard(*this);
    step(e.line);
    switch (e.kind) {
        case Expr::Kind::literal:
            return e.value;
        case Expr::Kind::name:
            return lookup(e.name);
        case Expr::Kind::attr:
            return get_attr(eval(*e.a), e.name);
        case Expr::Kind::item: {
            const Value target = eval(*e.a);
            return get_item(target, eval(*e.b));
        }
        case Expr::Kind::slice: {
            const Value target = eval(*e.args[0].value);
            Value parts[3];
            for (int k = 0; k < 3; ++k)
                if (e.args[static_cast<size_t>(k) + 1].value)
                    parts[k] = eval(*e.args[static_cast<size_t>(k) + 1].value);
            return slice(target, parts[0], parts[1], parts[2]);
        }
        case Expr::Kind::call:
            return eval_call(e);
        case Expr::Kind::filter: {
            Value input = eval(*e.a);
            Args args = eval_args(e.args);
            line_ = e.line;
            return apply_filter(e.name, std::move(input), args);
        }
        case Expr::Kind::test: {
            Value input = eval(*e.a);
            Args args = eval_args(e.args);
            line_ = e.line;
            return Value::boolean(apply_test(e.name, input, args) != e.negated);
        }
        case Expr::Kind::unary: {
            const Value v = eval(*e.a);
            if (e.name == "not") return Value::boolean(!v.truthy());
            if (v.kind == Value::Kind::number) return Value::number(e.name == "-" ? -v.f : v.f);
            if (v.kind == Value::Kind::integer || v.kind == Value::Kind::boolean) {
                const int64_t i = v.kind == Value::Kind::integer ? v.i : v.b;
                if (e.name == "-" && i == INT64_MIN) fail_at("integer overflow");
                return Value::integer(e.name == "-" ? -i : i);
            }
            fail_at(fmt::format("bad operand type for unary {}: '{}'", e.name, to_repr(v)));
        }
        case Expr::Kind::binary: {
            if (e.name == "and") {
                Value a = eval(*e.a);
                return a.truthy() ? eval(*e.b) : a;
            }
            if (e.name == "or") {
                Value a = eval(*e.a);
                return a.truthy() ? a : eval(*e.b);
            }
            const Value a = eval(*e.a);
            const Value b = eval(*e.b);
            line_ = e.line;
            return binary(e.name, a, b);
        }
        case Expr::Kind::compare: {
            Value left = eval(*e.args[0].value);
            for (size_t k = 0; k < e.ops.size(); ++k) {
                Value right = eval(*e.args[k + 1].value);
                line_ = e.line;
                const std::string& op = e.ops[k];
                bool r;
                if (op == "==") {
                    r = equals(left, right);
                } else if (op == "!=") {
                    r = !equals(left, right);
                } else if (op == "in" || op == "not in") {
                    r = contains(right, left) == (op == "in");
                } else {
                    const int c = compare(left, right);
                    r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
                }
                if (!r) return Value::boolean(false);
                left = std::move(right);
            }
            return Value::boolean(true);
        }
        case Expr::Kind::condition:
            if (eval(*e.b).truthy()) return eval(*e.a);
            return e.c ? eval(*e.c) : Value::undefined();
        case Expr::Kind::list:
        case Expr::Kind::tuple: {
            List items;
            for (const Arg& a : e.args) items.push_back(eval(*a.value));
            return Value::make_list(std::move(items));
        }
        case Expr::Kind::dict: {
            Value d = Value::make_dict();
            for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
                const Value key = eval(*e.args[k].value);
                if (!key.is_string()) fail_at("dictionary keys must be strings");
                d.dict->set(key.s, eval(*e.args[k + 1].value));
            }
            return d;
        }
    }
    return Value::undefined();
}

Renderer::Args Renderer::eval_args(const std::vector<Arg>& exprs) {
    Args args;
    for (const Arg& a : exprs) {
        if (a.name.empty()) {
            if (!args.kwargs.empty()) fail_at("positional argument after keyword argument");
            args.positional.push_back(eval(*a.value));
        } else {
            args.kwargs.emplace_back(a.name, eval(*a.value));
        }
    }
    return args;
}

Value Renderer::eval_call(const Expr& e) {
    if (e.a->kind == Expr::Kind::attr) {  // a method: str.strip(), dict.items(), loop.cycle()
        Value self = eval(*e.a->a);
        Args args = eval_args(e.args);
        line_ = e.line;
        const bool is_item = self.kind == Value::Kind::dict && !is_dict_method(e.a->name) &&
                             self.dict->find(e.a->name) != nullptr;
        if (!is_item) return call_method(self, e.a->name, args);
        const Value& item = *self.dict->find(e.a->name);
        if (item.kind == Value::Kind::function && item.s == "loop.cycle")
            return call_method(self, "cycle", args);
        return call_value(item, args);
    }
    Value callee = eval(*e.a);
    Args args = eval_args(e.args);
    line_ = e.line;
    return call_value(callee, args);
}

Value Renderer::call_value(const Value& callee, Args& args) {
    if (callee.kind == Value::Kind::macro) {
        return call_macro(*callee.macro, std::move(args.positional), std::move(args.kwargs));
    }
    if (callee.kind == Value::Kind::function) return call_global(callee.s, args);
    if (callee.is_undefined()) fail_at("'" + callee.s + "' is undefined");
    fail_at(fmt::format("'{}' object is not callable", to_repr(callee)));
}

Value Renderer::get_attr(const Value& v, const std::string& name) {
    if (v.is_undefined()) {
        fail_at(v.s.empty() ? "undefined value has no attribute '" + name + "'"
                            : "'" + v.s + "' is undefined");
    }
    if (v.kind == Value::Kind::dict) {
        if (const Value* found = v.dict->find(name)) return *found;
    }
    return Value::undefined(name);
}

Value Renderer::get_item(const Value& v, const Value& key) {
    if (v.is_undefined()) {
        fail_at(v.s.empty() ? "undefined value has no item " + to_repr(key)
                            : "'" + v.s + "' is undefined");
    }
    if (v.kind == Value::Kind::dict) {
        if (key.is_string()) {
            if (const Value* found = v.dict->find(key.s)) return *found;
        }
        return Value::undefined(to_str(key));
    }
    if ((v.kind == Value::Kind::list || v.is_string()) &&
        (key.kind == Value::Kind::integer || key.kind == Value::Kind::boolean)) {
        int64_t i = key.kind == Value::Kind::integer ? key.i : key.b;
        if (v.kind == Value::Kind::list) {
            const auto n = static_cast<int64_t>(v.list->size());
            if (i < 0) i += n;
            if (i < 0 || i >= n) return Value::undefined();
            return (*v.list)[static_cast<size_t>(i)];
        }
        const std::vector<char32_t> cps = code_points(v.s);
        const auto n = static_cast<int64_t>(cps.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined();
        return Value::string(
            from_code_points(&cps[static_cast<size_t>(i)], &cps[static_cast<size_t>(i)] + 1));
    }
    if (key.is_string()) return get_attr(v, key.s);
    return Value::undefined();
}

// Python's slice semantics, including negative steps.
Value Renderer::slice(const Value& v, const Value& start_v, const Value& stop_v,
                      const Value& step_v) {
    auto as_index = [&](const Value& x, const char* what) -> std::optional<int64_t> {
        if (x.is_undefined() || x.is_none()) return std::nullopt;
        if (x.kind == Value::Kind::integer) return x.i;
        if (x.kind == Value::Kind::boolean) return x.b ? 1 : 0;
        fail_at(std::string("slice ") + what + " must be an integer");
    };
    const int64_t step = as_index(step_v, "step").value_or(1);
    if (step == 0) fail_at("slice step cannot be zero");
    if (step == INT64_MIN) fail_at("slice step out of range");
    std::vector<char32_t> cps;
    int64_t n;
    if (v.kind == Value::Kind::list) {
        n = static_cast<int64_t>(v.list->size());
    } else if (v.is_string()) {
        cps = code_points(v.s);
        n = static_cast<int64_t>(cps.size());
    } else if (v.is_undefined()) {
        fail_at("'" + v.s + "' is undefined");
    } else {
        fail_at(fmt::format("'{}' object is not subscriptable", to_repr(v)));
    }
    auto clamp = [&](std::optional<int64_t> x, int64_t def) {
        if (!x) return def;
        int64_t i = *x;
        if (i < 0) {
            i = i < -n ? (step < 0 ? -1 : 0) : i + n;
        } else if (i >= n) {
            i = step < 0 ? n - 1 : n;
        }
        return i;
    };
    const int64_t start = clamp(as_index(start_v, "start"), step < 0 ? n - 1 : 0);
    const int64_t stop = clamp(as_index(stop_v, "stop"), step < 0 ? -1 : n);
    List items;
    std::u32string chars;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (v.kind == Value::Kind::list) {
            items.push_back((*v.list)[static_cast<size_t>(i)]);
        } else {
            chars += cps[static_cast<size_t>(i)];
        }
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
    }
    if (v.kind == Value::Kind::list) return Value::make_list(std::move(items));
    return Value::string(from_code_points(chars.data(), chars.data() + chars.size()));
}

bool Renderer::contains(const Value& container, const Value& item) {
    switch (container.kind) {
        case Value::Kind::string:
            if (!item.is_string())
                fail_at("'in <string>' requires string as left operand, not " + to_repr(item));
            return container.s.find(item.s) != std::string::npos;
        case Value::Kind::list:
            for (const Value& x : *container.list)
                if (equals(x, item)) return true;
            return false;
        case Value::Kind::dict:
            return item.is_string() && container.dict->find(item.s) != nullptr;
        case Value::Kind::undefined:
            return false;
        default:
            fail_at(fmt::format("argument of type '{}' is not iterable", to_repr(container)));
    }
}

Value Renderer::binary(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") {
        std::string s = to_str(a);
        s += to_str(b);
        check_size(s.size());
        return Value::string(std::move(s));
    }
    if (a.is_undefined() || b.is_undefined()) {
        fail_at("'" + (a.is_undefined() ? a.s : b.s) + "' is undefined");
    }
    if (op == "+") {
        if (a.is_string() && b.is_string()) {
            check_size(a.s.size() + b.s.size());
            return Value::string(a.s + b.s);
        }
        if (a.kind == Value::Kind::list && b.kind == Value::Kind::list) {
            List items = *a.list;
            items.insert(items.end(), b.list->begin(), b.list->end());
            return Value::make_list(std::move(items));
        }
    }
    if (op == "*" && (a.is_string() || a.kind == Value::Kind::list || b.is_string() ||
                      b.kind == Value::Kind::list)) {
        const Value& seq = a.is_numeric() ? b : a;
        const Value& count = a.is_numeric() ? a : b;
        if (count.kind != Value::Kind::integer && count.kind != Value::Kind::boolean)
            fail_at("can't multiply sequence by non-int");
        const int64_t times =
            std::max<int64_t>(0, count.kind == Value::Kind::integer ? count.i : count.b);
        if (seq.is_string()) {
            check_size(static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)) * seq.s.size());
            std::string s;
            for (int64_t k = 0; k < times; ++k) s += seq.s;
            return Value::string(std::move(s));
        }
        if (seq.kind == Value::Kind::list) {
            check_size(static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)) * seq.list->size());
            List items;
            for (int64_t k = 0; k < times; ++k)
                items.insert(items.end(), seq.list->begin(), seq.list->end());
            return Value::make_list(std::move(items));
        }
    }
    if (op == "%" && a.is_string()) fail_at("string formatting with '%' is not supported");
    if (!a.is_numeric() || !b.is_numeric()) {
        fail_at(fmt::format("unsupported operand types for {}: '{}' and '{}'", op, to_repr(a),
                            to_repr(b)));
    }
    const bool ints = a.kind != Value::Kind::number && b.kind != Value::Kind::number;
    if (ints && op != "/") {
        const int64_t x = a.kind == Value::Kind::integer ? a.i : a.b;
        const int64_t y = b.kind == Value::Kind::integer ? b.i : b.b;
        int64_t r = 0;
        bool overflow = false;
        if (op == "+") {
            overflow = __builtin_add_overflow(x, y, &r);
        } else if (op == "-") {
            overflow = __builtin_sub_overflow(x, y, &r);
        } else if (op == "*") {
            overflow = __builtin_mul_overflow(x, y, &r);
        } else if (op == "//" || op == "%") {
            if (y == 0) fail_at("integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) fail_at("integer overflow");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
                --q;
                m += y;
            }
            r = op == "//" ? q : m;
        } else if (op == "**") {
            if (y < 0)
                return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
            r = 1;
            for (int64_t k = 0; k < y && !overflow; ++k) {
                overflow = __builtin_mul_overflow(r, x, &r);
                if (r == 0 || r == 1) break;
            }
            if (!overflow && r == -1 && y % 2 == 0) r = 1;
        }
        if (overflow) fail_at("integer overflow");
        return Value::integer(r);
    }
    const double x = as_double(a), y = as_double(b);
    if (op == "+") return Value::number(x + y);
    if (op == "-") return Value::number(x - y);
    if (op == "*") return Value::number(x * y);
    if (op == "**") return Value::number(std::pow(x, y));
    if (y == 0.0) fail_at("float division by zero");
    if (op == "/") return Value::number(x / y);
    const double q = std::floor(x / y);
    if (op == "//") return Value::number(q);
    double m = std::fmod(x, y);
    if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
    return Value::number(m);
}

}  // namespace edgeq::jinja

namespace edgeq {

ChatTemplate::ChatTemplate(std::string_view source, const ChatTemplateLimits& limits)
    : program_(std::make_unique<Program>()), limits_(limits) {
    program_->body = jinja::parse_template(source, limits.max_depth);
}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
    if (!context.is_object()) fail("chat template: the context must be a JSON object");
    jinja::Renderer renderer(limits_);
    for (const auto& [key, value] : context.items()) {
        renderer.set_variable(key, jinja::from_json(value));
    }
    try {
        return renderer.render(program_->body);
    } catch (const Error& e) {
        const std::string message = e.what();
        if (message.rfind("chat template", 0) == 0) throw;
        fail("chat template: line {}: {}", renderer.line(), message);
    }
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token) const {
    nlohmann::ordered_json context = nlohmann::ordered_json::object();
    context["messages"] = nlohmann::ordered_json::array();
    for (const ChatMessage& m : messages) {
        context["messages"].push_back({{"role", m.role}, {"content", m.content}});
    }
    context["add_generation_prompt"] = add_generation_prompt;
    context["bos_token"] = bos_token;
    context["eos_token"] = eos_token;
    return render(context);
}

std::string render_chat_template(const std::string& source,
                                 const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token) {
    return ChatTemplate(source).render(messages, add_generation_prompt, bos_token, eos_token);
}

}  // namespace edgeq
