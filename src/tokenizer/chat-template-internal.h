// Chat templates inside: values with Python's semantics, the syntax tree, the parser and the
// helpers the interpreter shares with them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgeq/tokenizer/chat-template.h"

namespace edgeq::jinja {

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Macro;

// A Jinja value. Lists and dicts are shared, as Python's are; a namespace() is a dict whose
// attributes `set` may assign.
struct Value {
    enum class Kind : uint8_t {
        undefined,
        none,
        boolean,
        integer,
        number,
        string,
        list,
        dict,
        function,
        macro
    };
    Kind kind = Kind::undefined;
    bool b = false;
    bool is_namespace = false;  // for dicts
    int64_t i = 0;
    double f = 0.0;
    std::string s;  // string; the name of an undefined value or of a function
    std::shared_ptr<List> list;
    std::shared_ptr<Dict> dict;
    std::shared_ptr<const Macro> macro;

    static Value undefined(std::string name = {});
    static Value none();
    static Value boolean(bool v);
    static Value integer(int64_t v);
    static Value number(double v);
    static Value string(std::string v);
    static Value make_list(List items = {});
    static Value make_dict();
    static Value function(std::string name);

    bool is_undefined() const { return kind == Kind::undefined; }
    bool is_none() const { return kind == Kind::none; }
    bool is_string() const { return kind == Kind::string; }
    bool is_numeric() const {  // Python's numbers: bool, int, float
        return kind == Kind::boolean || kind == Kind::integer || kind == Kind::number;
    }
    bool truthy() const;
};

struct Dict {
    std::vector<std::pair<std::string, Value>> items;  // insertion order
    const Value* find(std::string_view key) const;
    void set(const std::string& key, Value value);
};

// Python's str() and repr() of a value, json.dumps() as transformers' tojson calls it, ==,
// ordering (an Error for unorderable types), and code points of UTF-8 text.
std::string to_str(const Value& v);
std::string to_repr(const Value& v);
std::string to_json(const Value& v, int indent);  // indent < 0: one line
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);
double as_double(const Value& v);
std::vector<char32_t> code_points(std::string_view s);
std::string from_code_points(const char32_t* begin, const char32_t* end);
bool is_python_space(char32_t c);
Value from_json(const nlohmann::ordered_json& j);

// Syntax tree.
struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Arg {
    std::string name;  // empty for a positional argument
    ExprPtr value;
};

struct Expr {
    enum class Kind : uint8_t {
        literal,    // value
        name,       // name
        attr,       // a.name
        item,       // a[b]
        slice,      // a[b:c:d] (absent parts null)
        call,       // a(args)
        filter,     // a | name(args)
        test,       // a is [not] name args
        unary,      // op a: "-", "+", "not"
        binary,     // a op b: + - * / // % ** ~ and or in "not in"
        compare,    // a op b op c ...: ops and operands
        condition,  // a if b else c
        list,       // [args]
        dict,       // {a: b, ...}: keys and values alternate in args
        tuple       // (a, b)
    };
    Kind kind = Kind::literal;
    int line = 0;
    Value value;
    std::string name;  // name, attribute, filter, test or operator
    bool negated = false;
    ExprPtr a, b, c;
    std::vector<Arg> args;
    std::vector<std::string> ops;  // compare
};

struct Stmt {
    enum class Kind : uint8_t {
        text,       // text
        output,     // {{ expr }}
        if_,        // branches: (cond, body)..., else_body
        for_,       // targets in expr [if cond]: body [else else_body]
        set,        // target (name or ns.attr) = expr
        set_block,  // {% set name %}body{% endset %}
        macro,      // {% macro name(params) %}body{% endmacro %}
        break_,
        continue_
    };
    Kind kind = Kind::text;
    int line = 0;
    std::string text;
    ExprPtr expr, cond;
    std::vector<std::pair<ExprPtr, Body>> branches;
    Body body, else_body;
    std::vector<std::string> targets;  // for, set (a name, or namespace + attribute)
    std::string attribute;             // set ns.attribute
    std::shared_ptr<const Macro> macro;
};

struct Macro {
    std::string name;
    std::vector<std::pair<std::string, ExprPtr>> params;  // default null if none
    Body body;
};

// Parses a template: line endings normalized, one trailing newline dropped, whitespace
// control and trim_blocks / lstrip_blocks applied to the text.
Body parse_template(std::string_view source, int32_t max_depth);

}  // namespace edgeq::jinja

namespace edgeq {
struct ChatTemplate::Program {
    jinja::Body body;
};
}  // namespace edgeq
