// Unicode helpers for the tokenizers: lenient UTF-8 decoding, general categories and the
// White_Space property (from libutf8proc), simple lower-casing and canonical decomposition.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgeq::unicode {

// Category flags of one code point; a code point has exactly one of letter .. undefined, plus
// whitespace when it has the White_Space property.
enum : uint16_t {
    k_letter = 1 << 0,     // \p{L}
    k_number = 1 << 1,     // \p{N}
    k_punct = 1 << 2,      // \p{P}
    k_mark = 1 << 3,       // \p{M}
    k_symbol = 1 << 4,     // \p{S}
    k_separator = 1 << 5,  // \p{Z}
    k_control = 1 << 6,    // \p{C} except Cn: Cc Cf Co Cs
    k_undefined = 1 << 7,  // Cn
    k_whitespace = 1 << 8,
    k_upper = 1 << 9,   // Lu, Lt
    k_lower = 1 << 10,  // Ll
};

uint16_t flags(uint32_t cp);

// Code points of `text`. A byte that does not start a well-formed sequence becomes U+FFFD and
// decoding resumes at the next byte (as llama.cpp does: lead and continuation bytes are
// checked, overlong forms are not).
std::vector<uint32_t> decode(std::string_view text);
void append_utf8(std::string& out, uint32_t cp);
std::string to_utf8(uint32_t cp);

// Bytes of the sequence a lead byte announces (1 for ASCII and for stray bytes), from its high
// four bits only.
inline size_t sequence_length(uint8_t lead) {
    static constexpr uint8_t k_lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return k_lengths[lead >> 4];
}

// Simple (one code point) lower case mapping.
uint32_t to_lower(uint32_t cp);
// The first code point of the canonical decomposition ("é" -> "e").
uint32_t decomposed_base(uint32_t cp);

// Length of the longest prefix of `bytes` that holds only complete, well-formed UTF-8
// sequences, stopping before a sequence that is well-formed so far but cut short at the end.
// Ill-formed bytes are included (the caller replaces them).
size_t complete_prefix(std::string_view bytes);
// `bytes` with every ill-formed subsequence replaced by U+FFFD.
std::string sanitize(std::string_view bytes);

}  // namespace edgeq::unicode
