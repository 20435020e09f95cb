// Pre-tokenizers of the byte-level BPE families: the text is split into words before merges,
// each family by its own regular expression (or a sequence of them, each splitting the pieces
// the previous one made). Every regex is a hand-written scanner here with the semantics of a
// backtracking (ECMAScript / Oniguruma) match: leftmost match, first alternative that matches,
// greedy quantifiers; text between matches is a word of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgeq {

// Text as code points with their Unicode flags (unicode.h), decoded once per encode.
struct CodepointText {
    std::vector<uint32_t> cps;
    std::vector<uint16_t> flags;

    explicit CodepointText(std::string_view utf8);
    size_t size() const { return cps.size(); }
};

// A regex as a scanner: the length of its match starting exactly at `pos` (0: none), looking
// no further than `end` (the end of the piece being split: `$` and lookaheads stop there).
using Matcher = std::function<size_t(const CodepointText& text, size_t pos, size_t end)>;

struct PreTokenizer {
    std::vector<Matcher> stages;
    bool ignore_merges = false;  // a word that is a token is taken whole (Llama 3, Tekken)
    bool add_bos = false;        // the family's default for add_bos_token
};

// The pre-tokenizer tokenizer.ggml.pre names ("" means "default"), or nullptr if unknown.
const PreTokenizer* find_pre_tokenizer(std::string_view name);
// The names find_pre_tokenizer knows, comma separated.
std::string known_pre_tokenizers();

// Words of `text` as [begin, end) code point ranges, in order, covering it entirely.
std::vector<std::pair<size_t, size_t>> pre_tokenize(const PreTokenizer& pre,
                                                    const CodepointText& text);

}  // namespace edgeq
