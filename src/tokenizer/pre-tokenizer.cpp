#include "pre-tokenizer.h"

#include <algorithm>
#include <array>
#include <limits>

#include "unicode.h"

namespace edgeq {

using namespace unicode;

CodepointText::CodepointText(std::string_view utf8) : cps(decode(utf8)) {
    flags.resize(cps.size());
    for (size_t i = 0; i < cps.size(); ++i) flags[i] = unicode::flags(cps[i]);
}

namespace {

constexpr size_t k_unbounded = std::numeric_limits<size_t>::max();

using Test = bool (*)(const CodepointText& t, size_t i);

bool is_letter(const CodepointText& t, size_t i) {
    return t.flags[i] & k_letter;
}
bool is_number(const CodepointText& t, size_t i) {
    return t.flags[i] & k_number;
}
bool is_space(const CodepointText& t, size_t i) {
    return t.flags[i] & k_whitespace;
}
bool is_punct(const CodepointText& t, size_t i) {
    return t.flags[i] & k_punct;
}
// [^\s\p{L}\p{N}]
bool is_other(const CodepointText& t, size_t i) {
    return !(t.flags[i] & (k_whitespace | k_letter | k_number));
}
bool is_letter_or_mark(const CodepointText& t, size_t i) {
    return t.flags[i] & (k_letter | k_mark);
}
// [^\s\p{L}\p{M}\p{N}]
bool is_other_than_mark(const CodepointText& t, size_t i) {
    return !(t.flags[i] & (k_whitespace | k_letter | k_mark | k_number));
}
bool is_newline(uint32_t c) {
    return c == '\r' || c == '\n';
}
bool is_ascii_digit(const CodepointText& t, size_t i) {
    return t.cps[i] >= '0' && t.cps[i] <= '9';
}

// End of the run of code points passing `test` from `i` (at most `max_len` of them).
size_t run(const CodepointText& t, size_t i, size_t end, Test test, size_t max_len = k_unbounded) {
    const size_t start = i;
    while (i < end && i - start < max_len && test(t, i)) ++i;
    return i;
}

uint32_t ascii_lower(uint32_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

// 's|'t|'re|'ve|'m|'ll|'d, case-insensitive or not: the match length or 0.
size_t contraction(const CodepointText& t, size_t p, size_t end, bool any_case) {
    if (t.cps[p] != '\'' || p + 1 >= end) return 0;
    auto at = [&](size_t i) { return any_case ? ascii_lower(t.cps[i]) : t.cps[i]; };
    const uint32_t a = at(p + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (p + 2 >= end) return 0;
    const uint32_t b = at(p + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// The whitespace tail shared by the GPT-2 and Llama 3 patterns: \s*[\r\n]+ (if
// `newline_run`), then \s+(?!\S), then \s+.
size_t whitespace_tail(const CodepointText& t, size_t p, size_t end, bool newline_run) {
    const size_t stop = run(t, p, end, is_space);
    const size_t n = stop - p;
    if (n == 0) return 0;
    if (newline_run) {
        for (size_t i = stop; i > p; --i) {
            if (is_newline(t.cps[i - 1])) return i - p;
        }
    }
    if (stop < end && n > 1) return n - 1;  // leave the last space to the word after it
    return n;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t match_gpt2(const CodepointText& t, size_t p, size_t end) {
    if (const size_t n = contraction(t, p, end, false)) return n;
    const size_t q = p + (t.cps[p] == ' ' ? 1 : 0);
    if (q < end) {
        for (Test test : {is_letter, is_number, is_other}) {
            if (test(t, q)) return run(t, q, end, test) - p;
        }
    }
    return whitespace_tail(t, p, end, false);
}

// The Llama 3 pattern and its relatives:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[TAIL]*
// |\s*[\r\n]+|\s+(?!\S)|\s+
struct Llama3Pattern {
    bool contractions = true;
    size_t max_digits = 3;               // Llama 3: 3, Qwen 2: 1, k_unbounded: \p{N}+
    std::u32string_view tail = U"\r\n";  // what may follow a run of punctuation
    bool marks = false;                  // Qwen 3.5: [\p{L}\p{M}]+ words

    size_t operator()(const CodepointText& t, size_t p, size_t end) const {
        if (contractions) {
            if (const size_t n = contraction(t, p, end, true)) return n;
        }
        const uint32_t c = t.cps[p];
        const Test word = marks ? is_letter_or_mark : is_letter;
        const Test other = marks ? is_other_than_mark : is_other;
        // With marks in the word class a mark may also be the optional prefix; the match
        // ends at the same place either way.
        if (word(t, p)) return run(t, p, end, word) - p;
        if (!is_newline(c) && !is_letter(t, p) && !is_number(t, p) && p + 1 < end && word(t, p + 1))
            return run(t, p + 1, end, word) - p;
        if (is_number(t, p)) return run(t, p, end, is_number, max_digits) - p;
        const size_t q = p + (c == ' ' ? 1 : 0);
        if (q < end && other(t, q)) {
            size_t r = run(t, q, end, other);
            while (r < end && tail.find(static_cast<char32_t>(t.cps[r])) != tail.npos) ++r;
            return r - p;
        }
        return whitespace_tail(t, p, end, true);
    }
};

// Letter classes of the case-aware patterns (Tekken, GPT-4o):
// upper-ish [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], lower-ish [\p{Ll}\p{Lm}\p{Lo}\p{M}].
bool is_upperish(const CodepointText& t, size_t i) {
    const uint16_t f = t.flags[i];
    return (f & k_mark) || ((f & k_letter) && !(f & k_lower));
}
bool is_lowerish(const CodepointText& t, size_t i) {
    const uint16_t f = t.flags[i];
    return (f & k_mark) || ((f & k_letter) && !(f & k_upper));
}

// [^\r\n\p{L}\p{N}]?U*W+S? | [^\r\n\p{L}\p{N}]?U+W*S? | \p{N}{1,D} | ?[^\s\p{L}\p{N}]+[\r\n/]*
// | \s*[\r\n]+ | \s+(?!\S) | \s+     (S: an optional case-insensitive contraction)
struct CasedPattern {
    size_t max_digits = 1;
    bool contraction_suffix = false;

    static constexpr size_t k_none = k_unbounded;

    // U*W+ from s (backtracking the greedy U* until a W can start): its end or k_none.
    static size_t upper_then_lower(const CodepointText& t, size_t s, size_t end) {
        const size_t a = run(t, s, end, is_upperish);
        for (size_t j = a + 1; j-- > s;) {
            if (j < end && is_lowerish(t, j)) return run(t, j, end, is_lowerish);
        }
        return k_none;
    }
    static size_t upper_plus(const CodepointText& t, size_t s, size_t end) {
        const size_t a = run(t, s, end, is_upperish);
        return a == s ? k_none : run(t, a, end, is_lowerish);
    }

    size_t finish(const CodepointText& t, size_t p, size_t r, size_t end) const {
        if (contraction_suffix && r < end) r += contraction(t, r, end, true);
        return r - p;
    }

    size_t operator()(const CodepointText& t, size_t p, size_t end) const {
        const uint32_t c = t.cps[p];
        const bool prefix = !is_newline(c) && !is_letter(t, p) && !is_number(t, p);
        for (auto word : {upper_then_lower, upper_plus}) {
            if (prefix && p + 1 < end) {
                if (const size_t r = word(t, p + 1, end); r != k_none) return finish(t, p, r, end);
            }
            if (const size_t r = word(t, p, end); r != k_none) return finish(t, p, r, end);
        }
        if (is_number(t, p)) return run(t, p, end, is_number, max_digits) - p;
        const size_t q = p + (c == ' ' ? 1 : 0);
        if (q < end && is_other(t, q)) {
            size_t r = run(t, q, end, is_other);
            while (r < end && (is_newline(t.cps[r]) || t.cps[r] == '/')) ++r;
            return r - p;
        }
        return whitespace_tail(t, p, end, true);
    }
};

// [\p{P}$+<=>^~|]+ (and the backtick for Falcon)
Matcher punctuation_run(bool backtick) {
    return [backtick](const CodepointText& t, size_t p, size_t end) {
        size_t i = p;
        while (i < end) {
            const uint32_t c = t.cps[i];
            const bool extra = c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
                               c == '^' || c == '~' || c == '|' || (backtick && c == '`');
            if (!extra && !is_punct(t, i)) break;
            ++i;
        }
        return i - p;
    };
}

// A class repeated: X+ (or X alone when `single`).
Matcher class_run(Test test, bool single = false) {
    return [test, single](const CodepointText& t, size_t p, size_t end) {
        return run(t, p, end, test, single ? 1 : k_unbounded) - p;
    };
}

// \s?X+
Matcher space_then(Test test) {
    return [test](const CodepointText& t, size_t p, size_t end) -> size_t {
        if (test(t, p)) return run(t, p, end, test) - p;
        if (is_space(t, p) && p + 1 < end && test(t, p + 1)) return run(t, p + 1, end, test) - p;
        return 0;
    };
}

size_t match_three_digits(const CodepointText& t, size_t p, size_t end) {
    return run(t, p, end, is_ascii_digit, 3) - p == 3 ? 3 : 0;
}

bool is_newline_at(const CodepointText& t, size_t i) {
    return is_newline(t.cps[i]);
}

// [一-龥ࠀ-一가-퟿] of the DeepSeek patterns.
bool is_deepseek_cjk(const CodepointText& t, size_t i) {
    const uint32_t c = t.cps[i];
    return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF);
}

// The cased letters that DeepSeek LLM's second pattern lists as explicit ranges.
constexpr std::array<std::pair<uint32_t, uint32_t>, 87> k_deepseek_letters = {{
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},
    {0xD8, 0xF6},       {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},
    {0x295, 0x2AF},     {0x370, 0x373},     {0x376, 0x376},     {0x377, 0x377},
    {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},
    {0x48A, 0x52F},     {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},
    {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},
    {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},
    {0x1FB6, 0x1FBC},   {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},
    {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},
    {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},
    {0x213C, 0x213F},   {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2183},
    {0x2184, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF2},   {0x2CF3, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},
    {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},
    {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},
    {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2},
    {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
}};

bool is_deepseek_letter(const CodepointText& t, size_t i) {
    const uint32_t c = t.cps[i];
    const auto it = std::upper_bound(k_deepseek_letters.begin(), k_deepseek_letters.end(), c,
                                     [](uint32_t v, const auto& r) { return v < r.first; });
    return it != k_deepseek_letters.begin() && c <= std::prev(it)->second;
}

// [!-/:-~！-／：-～‘-‟　-。] (U+3000 is whitespace and never reaches the class in llama.cpp)
bool is_deepseek_punct(const CodepointText& t, size_t i) {
    const uint32_t c = t.cps[i];
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) ||
           (c >= 0x3001 && c <= 0x3002);
}

// \s+$
size_t match_trailing_space(const CodepointText& t, size_t p, size_t end) {
    const size_t r = run(t, p, end, is_space);
    return r == end ? r - p : 0;
}

// ` ?[^(\s|.,!?…。，、।۔،)]+` (BLOOM, Poro, GPT-3 Finnish)
bool is_bloom_word(const CodepointText& t, size_t i) {
    if (is_space(t, i)) return false;
    switch (t.cps[i]) {
        case '(':
        case '|':
        case '.':
        case ',':
        case '!':
        case '?':
        case ')':
        case 0x2026:
        case 0x3002:
        case 0xFF0C:
        case 0x3001:
        case 0x0964:
        case 0x06D4:
        case 0x060C:
            return false;
        default:
            return true;
    }
}
size_t match_bloom(const CodepointText& t, size_t p, size_t end) {
    const size_t q = p + (t.cps[p] == ' ' ? 1 : 0);
    return q < end && is_bloom_word(t, q) ? run(t, q, end, is_bloom_word) - p : 0;
}

struct Family {
    std::vector<std::string_view> names;
    PreTokenizer pre;
};

const std::vector<Family>& families() {
    static const std::vector<Family> table = [] {
        const Matcher gpt2 = match_gpt2;
        const Matcher llama3 = Llama3Pattern{};
        const Matcher qwen2 = Llama3Pattern{.max_digits = 1};
        const Matcher digit = class_run(is_number, true);
        std::vector<Family> t;
        t.push_back({{"default", ""},
                     {{punctuation_run(false), gpt2, class_run(is_number), match_three_digits}}});
        t.push_back({{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                      "midm-2.0", "lfm2"},
                     {{llama3}, true, true}});
        t.push_back({{"dbrx", "smaug-bpe", "chatglm-bpe"}, {{llama3}}});
        t.push_back({{"glm4"}, {{llama3}, true}});
        t.push_back(
            {{"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "megrez", "grok-2", "kormo"},
             {{qwen2}}});
        t.push_back({{"qwen35"}, {{Llama3Pattern{.max_digits = 1, .marks = true}}}});
        t.push_back({{"ufakzeka"}, {{Llama3Pattern{.contractions = false, .max_digits = 1}}}});
        t.push_back({{"seed-coder"}, {{Llama3Pattern{.max_digits = 1, .tail = U""}}}});
        t.push_back({{"minicpm5"},
                     {{class_run(is_number), Llama3Pattern{.max_digits = k_unbounded}}, true}});
        t.push_back({{"tekken"}, {{CasedPattern{}}, true, true}});
        t.push_back({{"gpt-4o", "llama4", "minimax-m2"},
                     {{CasedPattern{.max_digits = 3, .contraction_suffix = true}}}});
        t.push_back({{"deepseek-llm"},
                     {{class_run(is_newline_at, true), space_then(is_deepseek_letter),
                       space_then(is_deepseek_punct), match_trailing_space,
                       class_run(is_deepseek_cjk), class_run(is_number)}}});
        t.push_back({{"deepseek-coder"},
                     {{class_run(is_newline_at, true), space_then(is_letter), space_then(is_punct),
                       class_run(is_deepseek_cjk), digit}}});
        t.push_back({{"falcon"}, {{punctuation_run(true), gpt2, match_three_digits}}});
        t.push_back({{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                      "minerva-7b", "mellum2"},
                     {{digit, gpt2}}});
        t.push_back({{"gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v1-en",
                      "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "gigachat",
                      "exaone4", "trillion", "granite-docling", "a.x-4.0", "mellum", "modern-bert"},
                     {{gpt2}}});
        t.push_back({{"bloom", "poro-chat", "gpt3-finnish"}, {{match_bloom}}});
        t.push_back({{"viking"}, {{match_bloom, digit}}});
        return t;
    }();
    return table;
}

}  // namespace

const PreTokenizer* find_pre_tokenizer(std::string_view name) {
    for (const Family& f : families()) {
        if (std::find(f.names.begin(), f.names.end(), name) != f.names.end()) return &f.pre;
    }
    return nullptr;
}

std::string known_pre_tokenizers() {
    std::string out;
    for (const Family& f : families()) {
        for (std::string_view n : f.names) {
            if (n.empty()) continue;
            if (!out.empty()) out += ", ";
            out += n;
        }
    }
    return out;
}

std::vector<std::pair<size_t, size_t>> pre_tokenize(const PreTokenizer& pre,
                                                    const CodepointText& text) {
    std::vector<std::pair<size_t, size_t>> spans, next;
    if (text.size() > 0) spans.emplace_back(0, text.size());
    for (const Matcher& match : pre.stages) {
        next.clear();
        for (const auto& [begin, end] : spans) {
            size_t gap = begin;
            size_t p = begin;
            while (p < end) {
                const size_t n = match(text, p, end);
                if (n == 0) {
                    ++p;
                    continue;
                }
                if (gap < p) next.emplace_back(gap, p);
                next.emplace_back(p, p + n);
                p += n;
                gap = p;
            }
            if (gap < end) next.emplace_back(gap, end);
        }
        spans.swap(next);
    }
    return spans;
}

}  // namespace edgeq
