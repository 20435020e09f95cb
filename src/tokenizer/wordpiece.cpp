// WordPiece (BERT): the text is normalized (lower case, accents stripped as the metadata says),
// cut at whitespace and around punctuation and CJK ideographs, and each word is matched
// greedily, longest token first, from the left. The vocabulary marks word-initial tokens
// with a leading "▁" (llama.cpp's converter turns "##" continuations into bare text and bare
// word starts into "▁..."). A word that cannot be covered becomes the unknown token.
#include "tokenizer-internal.h"
#include "unicode.h"

namespace edgeq {

namespace {

bool is_cjk_ideograph(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace

void Tokenizer::Impl::encode_wordpiece(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<std::string> words(1);
    for (uint32_t cp : unicode::decode(text)) {
        if (strip_accents) cp = unicode::decomposed_base(cp);
        const uint16_t f = unicode::flags(cp);
        if (f & unicode::k_whitespace) {
            if (!words.back().empty()) words.emplace_back();
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || (f & unicode::k_control)) continue;
        if (strip_accents && (f & unicode::k_mark)) continue;
        const std::string s = unicode::to_utf8(lowercase ? unicode::to_lower(cp) : cp);
        if ((f & unicode::k_punct) || (cp < 0x7F && (f & unicode::k_symbol)) ||
            is_cjk_ideograph(cp)) {
            if (!words.back().empty()) words.emplace_back();
            words.back() = s;
            words.emplace_back();
        } else {
            words.back() += s;
        }
    }

    for (const std::string& w : words) {
        if (w.empty()) continue;
        const std::string word = "\xE2\x96\x81" + w;
        const size_t first = out.size();
        const size_t n = word.size();
        for (size_t i = 0; i < n;) {
            size_t matched = 0;
            for (size_t j = std::min(n, i + max_token_bytes); j > i; --j) {
                if (const int32_t id = find(std::string_view(word).substr(i, j - i)); id >= 0) {
                    out.push_back(id);
                    matched = j - i;
                    break;
                }
            }
            if (matched == 0) {
                out.resize(first);
                break;
            }
            i += matched;
        }
        if (out.size() == first && unk >= 0) out.push_back(unk);
    }
}

}  // namespace edgeq
