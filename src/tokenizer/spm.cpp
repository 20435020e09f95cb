// SentencePiece-style BPE as llama.cpp runs it: the text (spaces already "▁") is cut into
// UTF-8 characters, then the adjacent pair whose concatenation is the highest-scoring token is
// merged, repeatedly (ties: the leftmost pair). What never became a token is emitted as its
// byte tokens <0xXX>.
#include <queue>

#include "tokenizer-internal.h"
#include "unicode.h"

namespace edgeq {

namespace {

struct Symbol {
    size_t start;
    size_t size;  // 0 once merged into its left neighbour
    int prev;
    int next;
};

struct Candidate {
    float score;
    int left;
    int right;
    size_t size;
};

struct ByScore {
    bool operator()(const Candidate& a, const Candidate& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

void Tokenizer::Impl::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<Symbol> symbols;
    symbols.reserve(text.size());
    for (size_t at = 0; at < text.size();) {
        const size_t n =
            std::min(unicode::sequence_length(static_cast<uint8_t>(text[at])), text.size() - at);
        const int index = static_cast<int>(symbols.size());
        symbols.push_back({at, n, index - 1, at + n == text.size() ? -1 : index + 1});
        at += n;
    }

    std::priority_queue<Candidate, std::vector<Candidate>, ByScore> queue;
    auto consider = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const size_t size = symbols[left].size + symbols[right].size;
        const int32_t id = find(text.substr(symbols[left].start, size));
        if (id < 0) return;
        queue.push({scores[static_cast<size_t>(id)], left, right, size});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) consider(i - 1, i);

    while (!queue.empty()) {
        const Candidate c = queue.top();
        queue.pop();
        Symbol& left = symbols[c.left];
        Symbol& right = symbols[c.right];
        // Stale: one side was merged since (sizes only change by merging).
        if (left.size == 0 || right.size == 0 || left.size + right.size != c.size) continue;
        left.size += right.size;
        right.size = 0;
        left.next = right.next;
        if (right.next >= 0) symbols[right.next].prev = c.left;
        consider(left.prev, c.left);
        consider(c.left, left.next);
    }

    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
        const std::string_view piece = text.substr(symbols[i].start, symbols[i].size);
        if (const int32_t id = find(piece); id >= 0) {
            out.push_back(id);
            continue;
        }
        for (const char byte : piece) {
            int32_t id = byte_ids[static_cast<uint8_t>(byte)];
            if (id < 0) id = unk;
            if (id >= 0) out.push_back(id);
        }
    }
}

}  // namespace edgeq
