#include "unicode.h"

#include <utf8proc.h>

namespace edgeq::unicode {

uint16_t flags(uint32_t cp) {
    if (cp > 0x10FFFF) return k_undefined;
    uint16_t f = 0;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LT:
            f = k_letter | k_upper;
            break;
        case UTF8PROC_CATEGORY_LL:
            f = k_letter | k_lower;
            break;
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
            f = k_letter;
            break;
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
            f = k_mark;
            break;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            f = k_number;
            break;
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            f = k_punct;
            break;
        case UTF8PROC_CATEGORY_SM:
        case UTF8PROC_CATEGORY_SC:
        case UTF8PROC_CATEGORY_SK:
        case UTF8PROC_CATEGORY_SO:
            f = k_symbol;
            break;
        case UTF8PROC_CATEGORY_ZS:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP:
            f = k_separator | k_whitespace;  // every Z code point is White_Space
            break;
        case UTF8PROC_CATEGORY_CC:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_CO:
        case UTF8PROC_CATEGORY_CS:
            f = k_control;
            break;
        default:
            f = k_undefined;
            break;
    }
    // White_Space beyond Z: the C0 controls TAB..CR and NEXT LINE.
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) f |= k_whitespace;
    return f;
}

std::vector<uint32_t> decode(std::string_view text) {
    std::vector<uint32_t> out;
    out.reserve(text.size());
    const auto* s = reinterpret_cast<const uint8_t*>(text.data());
    const size_t n = text.size();
    size_t i = 0;
    auto cont = [&](size_t k) { return k < n && (s[k] & 0xC0) == 0x80; };
    while (i < n) {
        const uint8_t c = s[i];
        if (c < 0x80) {
            out.push_back(c);
            ++i;
        } else if ((c & 0xE0) == 0xC0 && cont(i + 1)) {
            out.push_back((uint32_t{c & 0x1Fu} << 6) | (s[i + 1] & 0x3Fu));
            i += 2;
        } else if ((c & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
            out.push_back((uint32_t{c & 0x0Fu} << 12) | (uint32_t{s[i + 1] & 0x3Fu} << 6) |
                          (s[i + 2] & 0x3Fu));
            i += 3;
        } else if ((c & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
            out.push_back((uint32_t{c & 0x07u} << 18) | (uint32_t{s[i + 1] & 0x3Fu} << 12) |
                          (uint32_t{s[i + 2] & 0x3Fu} << 6) | (s[i + 3] & 0x3Fu));
            i += 4;
        } else {
            out.push_back(0xFFFD);
            ++i;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | ((cp >> 18) & 0x07));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::string to_utf8(uint32_t cp) {
    std::string s;
    append_utf8(s, cp);
    return s;
}

uint32_t to_lower(uint32_t cp) {
    if (cp > 0x10FFFF) return cp;
    return static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
}

uint32_t decomposed_base(uint32_t cp) {
    if (cp > 0x10FFFF) return cp;
    utf8proc_int32_t buffer[32];
    int last_boundclass = 0;
    const utf8proc_ssize_t n = utf8proc_decompose_char(
        static_cast<utf8proc_int32_t>(cp), buffer, 32,
        static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE), &last_boundclass);
    return n > 0 ? static_cast<uint32_t>(buffer[0]) : cp;
}

namespace {

// Length of the well-formed sequence at s[0..n), 0 when it is ill-formed, or -1 when it is
// well-formed so far but cut short by the end of the input (Unicode table 3-7).
int sequence_at(const uint8_t* s, size_t n) {
    const uint8_t c = s[0];
    if (c < 0x80) return 1;
    int len = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (int k = 1; k < len; ++k) {
        if (static_cast<size_t>(k) >= n) return -1;
        const uint8_t b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return 0;
    }
    return len;
}

}  // namespace

size_t complete_prefix(std::string_view bytes) {
    const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
    size_t i = 0;
    while (i < bytes.size()) {
        const int len = sequence_at(s + i, bytes.size() - i);
        if (len < 0) break;
        i += len == 0 ? 1 : static_cast<size_t>(len);
    }
    return i;
}

std::string sanitize(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
    size_t i = 0;
    while (i < bytes.size()) {
        const int len = sequence_at(s + i, bytes.size() - i);
        if (len > 0) {
            out.append(bytes.substr(i, static_cast<size_t>(len)));
            i += static_cast<size_t>(len);
            continue;
        }
        // One U+FFFD for the maximal subpart: the lead byte and the continuation bytes that
        // were acceptable so far.
        size_t k = i + 1;
        if (len < 0) {
            k = bytes.size();
        } else {
            while (k < bytes.size() && k - i < 4 && sequence_at(s + i, k - i + 1) < 0 &&
                   (s[k] & 0xC0) == 0x80) {
                ++k;
            }
        }
        out += "\xEF\xBF\xBD";
        i = k;
    }
    return out;
}

}  // namespace edgeq::unicode
