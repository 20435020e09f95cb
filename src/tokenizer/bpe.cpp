// Byte-level BPE (GPT-2 style): the pre-tokenizer cuts the text into words, each word's UTF-8
// bytes become GPT-2's printable code points, and within a word the adjacent pair with the
// lowest merge rank is merged, repeatedly (ties: the leftmost pair).
#include <queue>

#include "tokenizer-internal.h"
#include "unicode.h"

namespace edgeq {

const std::array<uint32_t, 256>& byte_to_codepoint() {
    // Printable Latin-1 bytes stand for themselves; the others (controls, space, 0x7F-0xA0,
    // 0xAD) take the code points from U+0100 up, in byte order.
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        uint32_t next = 256;
        for (uint32_t b = 0; b < 256; ++b) {
            const bool printable =
                (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            t[b] = printable ? b : next++;
        }
        return t;
    }();
    return table;
}

int byte_of_codepoint(uint32_t cp) {
    static const std::array<int16_t, 512> table = [] {
        std::array<int16_t, 512> t{};
        t.fill(-1);
        for (int b = 0; b < 256; ++b)
            t[byte_to_codepoint()[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
        return t;
    }();
    return cp < table.size() ? table[cp] : -1;
}

namespace {

struct Symbol {
    size_t start;
    size_t size;  // 0 once merged into its left neighbour
    int prev;
    int next;
};

struct Candidate {
    int32_t rank;
    int left;
    int right;
    size_t left_size;
    size_t right_size;
};

struct ByRank {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

}  // namespace

void Tokenizer::Impl::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
    const CodepointText cps(text);
    const auto words = pre_tokenize(*pre, cps);
    std::string word;
    std::vector<Symbol> symbols;
    std::priority_queue<Candidate, std::vector<Candidate>, ByRank> queue;
    for (const auto& [begin, end] : words) {
        word.clear();
        for (size_t i = begin; i < end; ++i) {
            if (!byte_level) {
                unicode::append_utf8(word, cps.cps[i]);
                continue;
            }
            std::string bytes;
            unicode::append_utf8(bytes, cps.cps[i]);
            for (const char b : bytes)
                unicode::append_utf8(word, byte_to_codepoint()[static_cast<uint8_t>(b)]);
        }
        if (pre->ignore_merges) {
            if (const int32_t id = find(word); id >= 0) {
                out.push_back(id);
                continue;
            }
        }

        symbols.clear();
        for (size_t at = 0; at < word.size();) {
            const size_t n = std::min(unicode::sequence_length(static_cast<uint8_t>(word[at])),
                                      word.size() - at);
            const int index = static_cast<int>(symbols.size());
            symbols.push_back({at, n, index - 1, at + n == word.size() ? -1 : index + 1});
            at += n;
        }
        auto consider = [&](int left, int right) {
            if (left < 0 || right < 0) return;
            const Symbol& l = symbols[left];
            const Symbol& r = symbols[right];
            const auto it =
                merge_ranks.find(pair_key(std::string_view(word).substr(l.start, l.size),
                                          std::string_view(word).substr(r.start, r.size)));
            if (it == merge_ranks.end()) return;
            queue.push({it->second, left, right, l.size, r.size});
        };
        for (int i = 1; i < static_cast<int>(symbols.size()); ++i) consider(i - 1, i);
        while (!queue.empty()) {
            const Candidate c = queue.top();
            queue.pop();
            Symbol& left = symbols[c.left];
            Symbol& right = symbols[c.right];
            if (left.size != c.left_size || right.size != c.right_size || right.size == 0)
                continue;  // stale: a side has been merged since
            left.size += right.size;
            right.size = 0;
            left.next = right.next;
            if (right.next >= 0) symbols[right.next].prev = c.left;
            consider(left.prev, c.left);
            consider(c.left, left.next);
        }

        for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
            const std::string_view piece =
                std::string_view(word).substr(symbols[i].start, symbols[i].size);
            if (const int32_t id = find(piece); id >= 0) {
                out.push_back(id);
                continue;
            }
            // No token: each byte of the symbol's text on its own, where that is a token.
            for (size_t k = 0; k < piece.size(); ++k) {
                if (const int32_t id = find(piece.substr(k, 1)); id >= 0) out.push_back(id);
            }
        }
    }
}

}  // namespace edgeq
