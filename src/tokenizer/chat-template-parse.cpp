// Chat templates: the lexer (text, tags, whitespace control as transformers' jinja2
// environment sets it: trim_blocks and lstrip_blocks) and a recursive-descent parser with
// jinja2's operator precedence.
#include <cstring>
#include <set>

#include "chat-template-internal.h"
#include "edgeq/core/error.h"
#include "unicode.h"

namespace edgeq::jinja {
namespace {

struct Token {
    enum class Type : uint8_t { name, string, integer, number, op, end };
    Type type = Type::end;
    std::string text;  // name, operator, the decoded string
    int64_t integer = 0;
    double number = 0.0;
    int line = 0;
};

struct Item {
    enum class Kind : uint8_t { text, output, block };
    Kind kind = Kind::text;
    std::string text;
    std::vector<Token> tokens;  // ends with an end token
    int line = 0;
};

[[noreturn]] void syntax_error(int line, const std::string& what) {
    fail("chat template: line {}: {}", line, what);
}

// Python's "unicode-escape" decoding, as jinja2 applies it to string literals: a code point
// UTF-8 cannot hold becomes U+FFFD.
void append_utf8(std::string& out, uint32_t cp) {
    const bool encodable = cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    unicode::append_utf8(out, encodable ? cp : 0xfffd);
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string unescape(std::string_view s, int line) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        switch (c) {
            case '\n':
                break;
            case '\\':
                out += '\\';
                break;
            case '\'':
                out += '\'';
                break;
            case '"':
                out += '"';
                break;
            case 'a':
                out += '\a';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'v':
                out += '\v';
                break;
            case 'x':
            case 'u':
            case 'U': {
                const size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (size_t k = 0; k < n; ++k) {
                    const int h = i + 1 + k < s.size() ? hex_value(s[i + 1 + k]) : -1;
                    if (h < 0) syntax_error(line, "truncated \\" + std::string(1, c) + " escape");
                    cp = cp * 16 + static_cast<uint32_t>(h);
                }
                i += n;
                append_utf8(out, cp);
                break;
            }
            default:
                if (c >= '0' && c <= '7') {
                    uint32_t cp = static_cast<uint32_t>(c - '0');
                    for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7';
                         ++k)
                        cp = cp * 8 + static_cast<uint32_t>(s[++i] - '0');
                    append_utf8(out, cp);
                } else {
                    out += '\\';
                    out += c;
                }
        }
    }
    return out;
}

bool is_space_byte(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Python's str.rstrip() / lstrip() over UTF-8.
std::string rstrip_text(const std::string& s) {
    const std::vector<char32_t> cps = code_points(s);
    size_t end = cps.size();
    while (end > 0 && is_python_space(cps[end - 1])) --end;
    return from_code_points(cps.data(), cps.data() + end);
}

class Lexer {
  public:
    explicit Lexer(std::string_view source) {
        // jinja2 reads "\r\n" and "\r" as "\n" and drops one newline at the end.
        source_.reserve(source.size());
        for (size_t i = 0; i < source.size(); ++i) {
            if (source[i] == '\r') {
                source_ += '\n';
                if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
            } else {
                source_ += source[i];
            }
        }
        if (!source_.empty() && source_.back() == '\n') source_.pop_back();
    }

    std::vector<Item> run() {
        std::vector<Item> items;
        size_t pos = 0;
        while (pos <= source_.size()) {
            const size_t start = next_tag(pos);
            std::string text = source_.substr(pos, start - pos);
            if (start < source_.size()) {
                const char kind = source_[start + 1];
                const char sign = start + 2 < source_.size() ? source_[start + 2] : '\0';
                if (sign == '-') {
                    text = rstrip_text(text);
                } else if (kind != '{' && sign != '+') {        // lstrip_blocks
                    const size_t l_pos = text.rfind('\n') + 1;  // npos + 1 == 0
                    const bool line_starting = pos == 0 || source_[pos - 1] == '\n';
                    if ((l_pos > 0 || line_starting) && l_pos < text.size()) {
                        bool blank = true;
                        for (size_t k = l_pos; k < text.size(); ++k)
                            blank &= is_space_byte(text[k]);
                        if (blank) text.resize(l_pos);
                    }
                }
            }
            if (!text.empty())
                items.push_back({Item::Kind::text, std::move(text), {}, line_at(pos)});
            if (start >= source_.size()) break;
            pos = read_tag(start, items);
        }
        return items;
    }

  private:
    size_t next_tag(size_t pos) const {
        for (size_t i = pos; i + 1 < source_.size(); ++i) {
            if (source_[i] == '{' &&
                (source_[i + 1] == '{' || source_[i + 1] == '%' || source_[i + 1] == '#'))
                return i;
        }
        return source_.size();
    }

    int line_at(size_t pos) {
        for (; line_pos_ < pos; ++line_pos_) line_ += source_[line_pos_] == '\n';
        return line_;
    }

    // After a tag: `-` strips all whitespace, a block or comment eats one newline.
    size_t after_close(size_t pos, char strip, bool block) const {
        if (strip == '-') {
            while (pos < source_.size() && is_space_byte(source_[pos])) ++pos;
        } else if (strip != '+' && block && pos < source_.size() && source_[pos] == '\n') {
            ++pos;
        }
        return pos;
    }

    size_t read_tag(size_t start, std::vector<Item>& items) {
        const int line = line_at(start);
        const char kind = source_[start + 1];
        size_t pos = start + 2;
        if (pos < source_.size() && (source_[pos] == '-' || source_[pos] == '+')) ++pos;
        if (kind == '#') {
            const size_t close = source_.find("#}", pos);
            if (close == std::string::npos) syntax_error(line, "unclosed comment");
            const char strip = close > pos ? source_[close - 1] : '\0';
            return after_close(close + 2, strip, true);
        }
        const std::string_view closer = kind == '{' ? "}}" : "%}";
        Item item{kind == '{' ? Item::Kind::output : Item::Kind::block, {}, {}, line};
        int tag_line = line;
        while (true) {
            while (pos < source_.size() && is_space_byte(source_[pos])) {
                tag_line += source_[pos] == '\n';
                ++pos;
            }
            if (pos >= source_.size()) syntax_error(line, "unclosed tag");
            char strip = '\0';
            if ((source_[pos] == '-' || source_[pos] == '+') &&
                source_.compare(pos + 1, 2, closer) == 0) {
                strip = source_[pos];
                ++pos;
            }
            if (source_.compare(pos, 2, closer) == 0) {
                if (strip == '+' && kind == '{') syntax_error(line, "unexpected '+'");
                item.tokens.push_back({Token::Type::end, {}, 0, 0.0, tag_line});
                items.push_back(std::move(item));
                return after_close(pos + 2, strip, kind == '%');
            }
            pos = read_token(pos, tag_line, item.tokens);
        }
    }

    size_t read_token(size_t pos, int line, std::vector<Token>& tokens) const {
        const char c = source_[pos];
        Token token;
        token.line = line;
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            size_t end = pos;
            while (end < source_.size() &&
                   (std::isalnum(static_cast<unsigned char>(source_[end])) || source_[end] == '_'))
                ++end;
            token.type = Token::Type::name;
            token.text = source_.substr(pos, end - pos);
            tokens.push_back(std::move(token));
            return end;
        }
        if (std::isdigit(static_cast<unsigned char>(c))) {
            size_t end = pos;
            auto digits = [&] {
                while (
                    end < source_.size() &&
                    (std::isdigit(static_cast<unsigned char>(source_[end])) || source_[end] == '_'))
                    ++end;
            };
            digits();
            bool is_float = false;
            if (end + 1 < source_.size() && source_[end] == '.' &&
                std::isdigit(static_cast<unsigned char>(source_[end + 1]))) {
                ++end;
                digits();
                is_float = true;
            }
            if (end < source_.size() && (source_[end] == 'e' || source_[end] == 'E')) {
                size_t e = end + 1;
                if (e < source_.size() && (source_[e] == '+' || source_[e] == '-')) ++e;
                if (e < source_.size() && std::isdigit(static_cast<unsigned char>(source_[e]))) {
                    end = e;
                    digits();
                    is_float = true;
                }
            }
            std::string text;
            for (size_t k = pos; k < end; ++k)
                if (source_[k] != '_') text += source_[k];
            if (is_float) {
                token.type = Token::Type::number;
                token.number = std::strtod(text.c_str(), nullptr);
            } else {
                token.type = Token::Type::integer;
                errno = 0;
                token.integer = std::strtoll(text.c_str(), nullptr, 10);
                if (errno == ERANGE) syntax_error(line, "integer " + text + " out of range");
            }
            tokens.push_back(std::move(token));
            return end;
        }
        if (c == '\'' || c == '"') {
            size_t end = pos + 1;
            while (end < source_.size() && source_[end] != c) end += source_[end] == '\\' ? 2 : 1;
            if (end >= source_.size()) syntax_error(line, "unterminated string");
            token.type = Token::Type::string;
            token.text = unescape(std::string_view(source_).substr(pos + 1, end - pos - 1), line);
            tokens.push_back(std::move(token));
            return end + 1;
        }
        static const char* const k_ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                            "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                            "]",  "{",  "}",  ",",  ".",  ":",  "|"};
        for (const char* op : k_ops) {
            if (source_.compare(pos, std::strlen(op), op) == 0) {
                token.type = Token::Type::op;
                token.text = op;
                tokens.push_back(std::move(token));
                return pos + std::strlen(op);
            }
        }
        syntax_error(line, fmt::format("unexpected character '{}'", c));
    }

    std::string source_;
    size_t line_pos_ = 0;
    int line_ = 1;
};

ExprPtr make_expr(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
}

class Parser {
  public:
    Parser(std::vector<Item> items, int32_t max_depth)
        : items_(std::move(items)), max_depth_(max_depth) {}

    Body parse() {
        std::string end;
        Body body = parse_body({}, end);
        return body;
    }

  private:
    struct DepthGuard {
        explicit DepthGuard(Parser& p) : p(p) {
            if (++p.depth_ > p.max_depth_)
                syntax_error(p.line(), fmt::format("nested deeper than {}", p.max_depth_));
        }
        ~DepthGuard() { --p.depth_; }
        Parser& p;
    };

    // Parses items until a block tag whose keyword is in `ends` (left as the current tag,
    // its keyword consumed, in `end`); at the top level (no ends) until the last item.
    Body parse_body(const std::set<std::string>& ends, std::string& end) {
        DepthGuard guard(*this);
        Body body;
        while (index_ < items_.size()) {
            Item& item = items_[index_++];
            if (item.kind == Item::Kind::text) {
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Kind::text;
                s->line = item.line;
                s->text = std::move(item.text);
                body.push_back(std::move(s));
                continue;
            }
            tokens_ = &item.tokens;
            pos_ = 0;
            if (item.kind == Item::Kind::output) {
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Kind::output;
                s->line = item.line;
                s->expr = parse_expression();
                expect_end();
                body.push_back(std::move(s));
                continue;
            }
            if (peek().type != Token::Type::name) syntax_error(line(), "expected a tag name");
            const std::string keyword = next().text;
            if (ends.count(keyword)) {
                end = keyword;
                return body;
            }
            body.push_back(parse_statement(keyword, item.line));
        }
        if (!ends.empty()) {
            syntax_error(items_.empty() ? 1 : items_.back().line,
                         fmt::format("missing {{% {} %}}", *ends.rbegin()));
        }
        return body;
    }

    std::unique_ptr<Stmt> parse_statement(const std::string& keyword, int stmt_line) {
        auto s = std::make_unique<Stmt>();
        s->line = stmt_line;
        std::string end;
        if (keyword == "if") {
            s->kind = Stmt::Kind::if_;
            ExprPtr cond = parse_or();
            expect_end();
            while (true) {
                Body body = parse_body({"elif", "else", "endif"}, end);
                s->branches.emplace_back(std::move(cond), std::move(body));
                if (end == "elif") {
                    cond = parse_or();
                    expect_end();
                    continue;
                }
                expect_end();
                if (end == "else") {
                    s->else_body = parse_body({"endif"}, end);
                    expect_end();
                }
                break;
            }
        } else if (keyword == "for") {
            s->kind = Stmt::Kind::for_;
            do {
                s->targets.push_back(expect_name());
            } while (accept_op(","));
            if (!accept_name("in")) syntax_error(line(), "expected 'in' in for");
            s->expr = parse_or();
            if (accept_name("if")) s->cond = parse_expression();
            if (accept_name("recursive")) syntax_error(line(), "recursive loops are not supported");
            expect_end();
            s->body = parse_body({"else", "endfor"}, end);
            expect_end();
            if (end == "else") {
                s->else_body = parse_body({"endfor"}, end);
                expect_end();
            }
        } else if (keyword == "set") {
            s->targets.push_back(expect_name());
            if (accept_op(".")) s->attribute = expect_name();
            if (accept_op("=")) {
                s->kind = Stmt::Kind::set;
                s->expr = parse_expression();
                if (peek().type == Token::Type::op && peek().text == ",") {
                    s->expr = parse_tuple_rest(std::move(s->expr));
                }
                expect_end();
            } else {
                if (!s->attribute.empty() || peek().type != Token::Type::end)
                    syntax_error(line(), "expected '=' in set");
                expect_end();
                s->kind = Stmt::Kind::set_block;
                s->body = parse_body({"endset"}, end);
                expect_end();
            }
        } else if (keyword == "macro") {
            s->kind = Stmt::Kind::macro;
            auto macro = std::make_shared<Macro>();
            macro->name = expect_name();
            expect_op("(");
            while (!accept_op(")")) {
                std::string param = expect_name();
                ExprPtr def;
                if (accept_op("=")) def = parse_expression();
                macro->params.emplace_back(std::move(param), std::move(def));
                if (!accept_op(",")) {
                    expect_op(")");
                    break;
                }
            }
            expect_end();
            macro->body = parse_body({"endmacro"}, end);
            expect_end();
            s->macro = std::move(macro);
        } else if (keyword == "break" || keyword == "continue") {
            s->kind = keyword == "break" ? Stmt::Kind::break_ : Stmt::Kind::continue_;
            expect_end();
        } else if (keyword == "generation") {  // transformers' marker of assistant text
            s->kind = Stmt::Kind::if_;
            expect_end();
            auto yes = make_expr(Expr::Kind::literal, stmt_line);
            yes->value = Value::boolean(true);
            s->branches.emplace_back(std::move(yes), parse_body({"endgeneration"}, end));
            expect_end();
        } else {
            syntax_error(stmt_line, fmt::format("unsupported tag '{}'", keyword));
        }
        return s;
    }

    // Tokens of the current tag.
    const Token& peek(size_t ahead = 0) const {
        const size_t k = std::min(pos_ + ahead, tokens_->size() - 1);
        return (*tokens_)[k];
    }
    const Token& next() {
        const Token& t = peek();
        if (pos_ + 1 < tokens_->size()) ++pos_;
        return t;
    }
    int line() const { return tokens_ != nullptr ? peek().line : 1; }
    bool is_op(const char* op, size_t ahead = 0) const {
        return peek(ahead).type == Token::Type::op && peek(ahead).text == op;
    }
    bool is_name(const char* name) const {
        return peek().type == Token::Type::name && peek().text == name;
    }
    bool accept_op(const char* op) {
        if (!is_op(op)) return false;
        next();
        return true;
    }
    bool accept_name(const char* name) {
        if (!is_name(name)) return false;
        next();
        return true;
    }
    std::string describe(const Token& t) const {
        switch (t.type) {
            case Token::Type::end:
                return "the end of the tag";
            case Token::Type::string:
                return "a string";
            case Token::Type::integer:
            case Token::Type::number:
                return "a number";
            default:
                return "'" + t.text + "'";
        }
    }
    void expect_op(const char* op) {
        if (!accept_op(op))
            syntax_error(line(), fmt::format("expected '{}', got {}", op, describe(peek())));
    }
    std::string expect_name() {
        if (peek().type != Token::Type::name)
            syntax_error(line(), "expected a name, got " + describe(peek()));
        return next().text;
    }
    void expect_end() {
        if (peek().type != Token::Type::end)
            syntax_error(line(), "expected the end of the tag, got " + describe(peek()));
    }

    ExprPtr parse_expression() {
        DepthGuard guard(*this);
        ExprPtr e = parse_or();
        while (accept_name("if")) {
            auto cond = make_expr(Expr::Kind::condition, line());
            cond->b = parse_or();
            cond->a = std::move(e);
            if (accept_name("else")) cond->c = parse_expression();
            e = std::move(cond);
        }
        return e;
    }

    ExprPtr binary(std::string op, ExprPtr a, ExprPtr b) {
        auto e = make_expr(Expr::Kind::binary, a->line);
        e->name = std::move(op);
        e->a = std::move(a);
        e->b = std::move(b);
        return e;
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (accept_name("or")) e = binary("or", std::move(e), parse_and());
        return e;
    }
    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (accept_name("and")) e = binary("and", std::move(e), parse_not());
        return e;
    }
    ExprPtr parse_not() {
        DepthGuard guard(*this);
        if (accept_name("not")) {
            auto e = make_expr(Expr::Kind::unary, line());
            e->name = "not";
            e->a = parse_not();
            return e;
        }
        return parse_compare();
    }
    ExprPtr parse_compare() {
        ExprPtr first = parse_math1();
        ExprPtr e;
        while (true) {
            std::string op;
            if (peek().type == Token::Type::op &&
                (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                 peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
                op = next().text;
            } else if (accept_name("in")) {
                op = "in";
            } else if (is_name("not") && peek(1).type == Token::Type::name &&
                       peek(1).text == "in") {
                next();
                next();
                op = "not in";
            } else {
                break;
            }
            if (!e) {
                e = make_expr(Expr::Kind::compare, first->line);
                e->args.push_back({{}, std::move(first)});
            }
            e->ops.push_back(op);
            e->args.push_back({{}, parse_math1()});
        }
        return e ? std::move(e) : std::move(first);
    }
    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            std::string op = next().text;
            e = binary(op, std::move(e), parse_concat());
        }
        return e;
    }
    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (accept_op("~")) e = binary("~", std::move(e), parse_math2());
        return e;
    }
    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            std::string op = next().text;
            e = binary(op, std::move(e), parse_pow());
        }
        return e;
    }
    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        while (accept_op("**")) e = binary("**", std::move(e), parse_unary(true));
        return e;
    }
    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            e = make_expr(Expr::Kind::unary, line());
            e->name = next().text;
            e->a = parse_unary(false);
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filters(std::move(e));
        return e;
    }

    ExprPtr parse_primary() {
        const Token& t = peek();
        const int l = t.line;
        if (t.type == Token::Type::name) {
            const std::string name = next().text;
            auto e = make_expr(Expr::Kind::literal, l);
            if (name == "true" || name == "True") {
                e->value = Value::boolean(true);
            } else if (name == "false" || name == "False") {
                e->value = Value::boolean(false);
            } else if (name == "none" || name == "None") {
                e->value = Value::none();
            } else {
                e->kind = Expr::Kind::name;
                e->name = name;
            }
            return e;
        }
        if (t.type == Token::Type::string) {
            std::string s;
            while (peek().type == Token::Type::string) s += next().text;
            auto e = make_expr(Expr::Kind::literal, l);
            e->value = Value::string(std::move(s));
            return e;
        }
        if (t.type == Token::Type::integer || t.type == Token::Type::number) {
            auto e = make_expr(Expr::Kind::literal, l);
            e->value = t.type == Token::Type::integer ? Value::integer(t.integer)
                                                      : Value::number(t.number);
            next();
            return e;
        }
        if (accept_op("(")) {
            if (accept_op(")")) return make_expr(Expr::Kind::tuple, l);
            ExprPtr e = parse_expression();
            if (is_op(",")) e = parse_tuple_rest(std::move(e));
            expect_op(")");
            return e;
        }
        if (accept_op("[")) {
            auto e = make_expr(Expr::Kind::list, l);
            while (!accept_op("]")) {
                e->args.push_back({{}, parse_expression()});
                if (!accept_op(",")) {
                    expect_op("]");
                    break;
                }
            }
            return e;
        }
        if (accept_op("{")) {
            auto e = make_expr(Expr::Kind::dict, l);
            while (!accept_op("}")) {
                e->args.push_back({{}, parse_expression()});
                expect_op(":");
                e->args.push_back({{}, parse_expression()});
                if (!accept_op(",")) {
                    expect_op("}");
                    break;
                }
            }
            return e;
        }
        syntax_error(l, "unexpected " + describe(t));
    }

    // `a, b, c` after its first element (the commas are still to be read).
    ExprPtr parse_tuple_rest(ExprPtr first) {
        auto e = make_expr(Expr::Kind::tuple, first->line);
        e->args.push_back({{}, std::move(first)});
        while (accept_op(",")) {
            if (is_op(")") || peek().type == Token::Type::end) break;
            e->args.push_back({{}, parse_expression()});
        }
        return e;
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            if (accept_op(".")) {
                if (peek().type == Token::Type::integer) {
                    auto index = make_expr(Expr::Kind::literal, line());
                    index->value = Value::integer(next().integer);
                    auto item = make_expr(Expr::Kind::item, e->line);
                    item->a = std::move(e);
                    item->b = std::move(index);
                    e = std::move(item);
                    continue;
                }
                auto attr = make_expr(Expr::Kind::attr, e->line);
                attr->name = expect_name();
                attr->a = std::move(e);
                e = std::move(attr);
            } else if (accept_op("[")) {
                e = parse_subscript(std::move(e));
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr target) {
        ExprPtr parts[3];
        int n_colons = 0;
        while (true) {
            if (is_op(":")) {
                if (++n_colons > 2) syntax_error(line(), "too many ':' in a slice");
                next();
                continue;
            }
            if (accept_op("]")) break;
            if (parts[n_colons]) syntax_error(line(), "expected ']'");
            parts[n_colons] = parse_expression();
        }
        if (n_colons == 0) {
            if (!parts[0]) syntax_error(line(), "empty subscript");
            auto e = make_expr(Expr::Kind::item, target->line);
            e->a = std::move(target);
            e->b = std::move(parts[0]);
            return e;
        }
        auto e = make_expr(Expr::Kind::slice, target->line);
        e->args.push_back({{}, std::move(target)});
        for (auto& p : parts) e->args.push_back({{}, std::move(p)});
        return e;
    }

    void parse_args(std::vector<Arg>& args) {
        expect_op("(");
        while (!accept_op(")")) {
            Arg arg;
            if (peek().type == Token::Type::name && is_op("=", 1)) {
                arg.name = next().text;
                next();
            }
            arg.value = parse_expression();
            args.push_back(std::move(arg));
            if (!accept_op(",")) {
                expect_op(")");
                break;
            }
        }
    }

    ExprPtr parse_call(ExprPtr callee) {
        auto e = make_expr(Expr::Kind::call, callee->line);
        e->a = std::move(callee);
        parse_args(e->args);
        return e;
    }

    ExprPtr parse_filters(ExprPtr e) {
        while (true) {
            if (accept_op("|")) {
                auto f = make_expr(Expr::Kind::filter, e->line);
                f->name = expect_name();
                while (accept_op(".")) f->name += "." + expect_name();
                f->a = std::move(e);
                if (is_op("(")) parse_args(f->args);
                e = std::move(f);
            } else if (accept_name("is")) {
                auto t = make_expr(Expr::Kind::test, e->line);
                t->negated = accept_name("not");
                t->name = expect_name();
                while (accept_op(".")) t->name += "." + expect_name();
                t->a = std::move(e);
                const Token& n = peek();
                if (is_op("(")) {
                    parse_args(t->args);
                } else if ((n.type == Token::Type::name && n.text != "else" && n.text != "or" &&
                            n.text != "and") ||
                           n.type == Token::Type::string || n.type == Token::Type::integer ||
                           n.type == Token::Type::number || is_op("[") || is_op("{")) {
                    if (is_name("is")) syntax_error(line(), "tests cannot be chained with 'is'");
                    t->args.push_back({{}, parse_postfix(parse_primary())});
                }
                e = std::move(t);
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    std::vector<Item> items_;
    size_t index_ = 0;
    const std::vector<Token>* tokens_ = nullptr;
    size_t pos_ = 0;
    int32_t depth_ = 0;
    int32_t max_depth_;
};

}  // namespace

Body parse_template(std::string_view source, int32_t max_depth) {
    return Parser(Lexer(source).run(), max_depth).parse();
}

}  // namespace edgeq::jinja
