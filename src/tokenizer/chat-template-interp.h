// Chat templates: the interpreter's state, shared by chat-template.cpp (statements and
// expressions) and chat-template-builtins.cpp (filters, tests, methods, globals).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chat-template-internal.h"

namespace edgeq::jinja {

class Renderer {
  public:
    explicit Renderer(const ChatTemplateLimits& limits);
    void set_variable(const std::string& name, Value value);
    std::string render(const Body& body);
    int line() const { return line_; }

  private:
    enum class Flow { normal, break_, continue_ };
    struct Args {
        std::vector<Value> positional;
        std::vector<std::pair<std::string, Value>> kwargs;
        // The argument at `index` or named `name`; nullopt if absent.
        std::optional<Value> get(size_t index, const char* name) const;
    };
    struct DepthGuard {
        explicit DepthGuard(Renderer& r);
        ~DepthGuard() { --r.depth_; }
        Renderer& r;
    };

    [[noreturn]] void fail_at(const std::string& message) const;
    void step(int line);
    void check_size(size_t n_bytes) const;
    void emit(std::string& out, const std::string& text) const;
    Value lookup(const std::string& name) const;

    Flow exec(const Body& body, std::string& out);
    Flow exec(const Stmt& s, std::string& out);
    Flow exec_for(const Stmt& s, std::string& out);
    List iterate(const Value& v);

    Value eval(const Expr& e);
    Args eval_args(const std::vector<Arg>& exprs);
    Value eval_call(const Expr& e);
    Value call_value(const Value& callee, Args& args);
    Value call_macro(const Macro& m, std::vector<Value> args,
                     std::vector<std::pair<std::string, Value>> kwargs);
    Value get_attr(const Value& v, const std::string& name);
    Value get_item(const Value& v, const Value& key);
    Value slice(const Value& v, const Value& start, const Value& stop, const Value& step);
    bool contains(const Value& container, const Value& item);
    Value binary(const std::string& op, const Value& a, const Value& b);

    // chat-template-builtins.cpp
    static bool is_global(const std::string& name);
    static bool is_dict_method(const std::string& name);
    Value call_global(const std::string& name, Args& args);
    Value call_method(const Value& self, const std::string& name, Args& args);
    Value apply_filter(const std::string& name, Value input, const Args& args);
    bool apply_test(const std::string& name, const Value& input, const Args& args);
    int64_t length(const Value& v);

    const ChatTemplateLimits& limits_;
    std::vector<std::vector<std::pair<std::string, Value>>> scopes_;
    size_t barrier_ = 0;  // a macro's scope: frames below it (but the first) are hidden
    int64_t steps_ = 0;
    int32_t depth_ = 0;
    int line_ = 0;
};

}  // namespace edgeq::jinja
