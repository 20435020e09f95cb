// The 12-byte packing of eight 6-bit (scale, min) pairs shared by Q4_K and Q5_K.
//   bytes 0..3:  scale j (low 6 bits) | high 2 bits of scale j+4
//   bytes 4..7:  min j   (low 6 bits) | high 2 bits of min j+4
//   bytes 8..11: low nibble of scale j+4 | low nibble of min j+4 << 4
#pragma once

#include <cstdint>
#include <utility>

namespace edgeq::quant {

inline std::pair<int, int> unpack_scale_min_k4(const uint8_t* q, int j) {
    if (j < 4) return {q[j] & 63, q[j + 4] & 63};
    return {(q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)};
}

inline void pack_scale_min_k4(const int* sc, const int* m, uint8_t* q) {
    for (int j = 0; j < 4; ++j) {
        q[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
        q[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
    }
}

}  // namespace edgeq::quant
