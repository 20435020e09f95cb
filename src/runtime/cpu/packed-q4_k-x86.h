// The x86 runs of packed Q4_K and Q5_K (layouts in pack-q4_k.cpp), included from packed-x86.h.
//
// Per sub-block, the 32 values of the 8 rows are 8 vectors of u8 (one per chunk, four values
// per row); against the activation's 4-byte groups broadcast, they give each row's integer dot
// product in its own lane, which is multiplied by the row's scale and added to a super-block
// int32 sum. The minimums times the activation's sub-block sums (from Q8_K's bsums) go to a
// second int32 sum; each super-block ends with one fmadd per sum. Sizes that keep the
// integers exact (activation quants in [-128, 127], nibbles <= 15, six-bit scales <= 63):
//   VNNI: a sub-block's dot product, |isum| <= 32 * 15 * 128 = 61440, times 63, times 8
//         sub-blocks: 3.1e7 < 2^31. The high nibbles enter as 16 q (one mask instead of a
//         shift and a mask), their sums (<= 16 * 61440) are multiples of 16, shifted back
//         exactly before the scales.
//   AVX2: vpmaddubsw's pair sums <= 2 * 15 * 128 = 3840; the 8 of a sub-block are added in
//         int16 (<= 30720 < 2^15) before one vpmaddwd with the scale, so the pairs never
//         saturate.
//   Q5_K: |isum| <= 32 * 31 * 128, times 63, times 8 < 2^31; vpmaddubsw's pair sums <= 7936,
//         four added in int16 (<= 31744), so each half of a sub-block is scaled apart.
//   Minimums: the sums of 32 activation quants, |bs| <= 4096, fit int16; 8 * 63 * 4096 < 2^31.
#pragma once

namespace edgeq::cpu {
namespace {

// Sum of the four chunks w[0..3] (u8, four values per row) times the four 4-byte groups at y,
// broadcast, added to acc: int32 lanes with VNNI, int16 lanes (pair sums of vpmaddubsw) else.
inline __m256i pq4k_dot4(__m256i acc, const __m256i* w, const int8_t* y) {
#if EDGEQ_VNNI
    for (int v = 0; v < 4; ++v) acc = dot_us_add_bcast4(acc, w[v], y + 4 * v);
    return acc;
#else
    const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], bcast4(y)),
                                        _mm256_maddubs_epi16(w[1], bcast4(y + 4)));
    const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(w[2], bcast4(y + 8)),
                                        _mm256_maddubs_epi16(w[3], bcast4(y + 12)));
    return _mm256_add_epi16(acc, _mm256_add_epi16(p0, p1));
#endif
}

// sumi + (the sums of `part`, of one sub-block) times the 8 rows' scales (bytes at sc).
template <int H>
inline __m256i pq4k_scaled(__m256i sumi, const __m256i* part, const uint8_t* sc) {
    const __m128i s8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc));
#if EDGEQ_VNNI
    __m256i isum = part[0];
    if constexpr (H == 2) isum = _mm256_add_epi32(isum, part[1]);
    return _mm256_add_epi32(sumi, _mm256_mullo_epi32(isum, _mm256_cvtepu8_epi32(s8)));
#else
    // Each row's scale in both int16 halves of its lane.
    const __m256i s16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(s8, s8));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(part[0], s16));
    if constexpr (H == 2) sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(part[1], s16));
    return sumi;
#endif
}

template <bool five_bits>
struct PQx_K {
    static constexpr size_t k_sb_bytes = five_bits ? 1440 : 1184;

    template <int NA>
    static void run(int64_t k, const uint8_t* group, const uint8_t* a, size_t as, float* out,
                    int64_t os, int n_rows) {
        // Accumulators per sub-block: vpdpbusd's latency needs two chains with one activation
        // row; vpmaddubsw's int16 sums of five-bit quants take only the four chunks of a half.
        constexpr int H = (EDGEQ_VNNI && NA == 1) || (!EDGEQ_VNNI && five_bits) ? 2 : 1;
        // With VNNI, the high nibbles of Q4_K enter as 16 q (one mask instead of a shift and a
        // mask per chunk); their sums, multiples of 16, shift back exactly.
        constexpr bool hi16 = EDGEQ_VNNI && !five_bits;
        const __m256i m16 = _mm256_set1_epi8(16);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256 acc[NA], acc_m[NA];
        for (int c = 0; c < NA; ++c) {
            acc[c] = _mm256_setzero_ps();
            acc_m[c] = _mm256_setzero_ps();
        }
        for (int64_t b = 0; b < k / 256; ++b) {
            const uint8_t* blk = group + b * k_sb_bytes;
            prefetch_block<NA>(blk, k_sb_bytes);
            __m256i sumi[NA], summ[NA];
            for (int c = 0; c < NA; ++c) {
                const auto& y = act<quant::BlockQ8_K>(a, as, c, b);
                // The sums of the 8 sub-blocks of 32, as int16 pairs (2t, 2t + 1) in lane t.
                const __m256i bs = load(y.bsums);
                const __m128i pairs =
                    _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                __m256i s = _mm256_setzero_si256();
                for (int t = 0; t < 4; ++t) {
                    const __m256i m16 = _mm256_cvtepu8_epi16(
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 96 + 16 * t)));
                    // Lane t of pairs in every lane (an index vector: t is no immediate at -O0).
                    const __m256i bst = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(pairs),
                                                                    _mm256_set1_epi32(t));
#if EDGEQ_VNNI
                    s = _mm256_dpwssd_epi32(s, m16, bst);
#else
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(m16, bst));
#endif
                }
                summ[c] = s;
                sumi[c] = _mm256_setzero_si256();
            }
            for (int p = 0; p < 4; ++p) {
                const uint8_t* chunks = blk + 160 + 256 * p;
                __m256i part_lo[NA][H], part_hi[NA][H];
                for (int c = 0; c < NA; ++c) {
                    for (int h = 0; h < H; ++h) {
                        part_lo[c][h] = _mm256_setzero_si256();
                        part_hi[c][h] = _mm256_setzero_si256();
                    }
                }
                for (int h = 0; h < 2; ++h) {
                    __m256i lo[4], hi[4];
                    __m256i qh = _mm256_setzero_si256();
                    if constexpr (five_bits) qh = load(blk + 1184 + 64 * p + 32 * h);
                    for (int v = 0; v < 4; ++v) {
                        __m256i bits = load(chunks + 32 * (4 * h + v));
                        // One load per chunk (the compiler would fold it into both masks, and
                        // the load ports, busy with the broadcasts, are the bottleneck).
                        __asm__("" : "+x"(bits));
                        lo[v] = _mm256_and_si256(bits, m4);
                        if constexpr (hi16) {
                            hi[v] = _mm256_andnot_si256(m4, bits);
                        } else {
                            hi[v] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                        }
                        if constexpr (five_bits) {
                            // Bit v of qh to bit 4 of lo, bit 4 + v to bit 4 of hi (the 16-bit
                            // shifts move no set bit across a byte's bit 4).
                            const __m256i bl = _mm256_sll_epi16(qh, _mm_cvtsi32_si128(4 - v));
                            const __m256i bh = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(v));
                            lo[v] = _mm256_or_si256(lo[v], _mm256_and_si256(bl, m16));
                            hi[v] = _mm256_or_si256(hi[v], _mm256_and_si256(bh, m16));
                        }
                    }
                    for (int c = 0; c < NA; ++c) {
                        const int8_t* q = act<quant::BlockQ8_K>(a, as, c, b).qs + 64 * p + 16 * h;
                        part_lo[c][h % H] = pq4k_dot4(part_lo[c][h % H], lo, q);
                        part_hi[c][h % H] = pq4k_dot4(part_hi[c][h % H], hi, q + 32);
                    }
                }
                if constexpr (hi16) {
                    for (int c = 0; c < NA; ++c)
                        for (int h = 0; h < H; ++h)
                            part_hi[c][h] = _mm256_srai_epi32(part_hi[c][h], 4);
                }
                for (int c = 0; c < NA; ++c) {
                    sumi[c] = pq4k_scaled<H>(sumi[c], part_lo[c], blk + 32 + 16 * p);
                    sumi[c] = pq4k_scaled<H>(sumi[c], part_hi[c], blk + 40 + 16 * p);
                }
            }
            const __m256 dw =
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
            const __m256 dmw =
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
            for (int c = 0; c < NA; ++c) {
                const __m256 yd = _mm256_set1_ps(act<quant::BlockQ8_K>(a, as, c, b).d);
                acc[c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_mul_ps(dw, yd), acc[c]);
                acc_m[c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ[c]), _mm256_mul_ps(dmw, yd), acc_m[c]);
            }
        }
        for (int c = 0; c < NA; ++c)
            store_rows(_mm256_sub_ps(acc[c], acc_m[c]), out + c * os, n_rows);
    }

    // The reference's panel (pack-q4_k.cpp): chunk v of pair p gives its group's 32 panel bytes
    // of values 4v.. of sub-block 2p (low nibbles) and 2p + 1 (high); the scales d * sc and the
    // minimums -dmin * m (the same float products as the reference's) eight rows at a time.
    static void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
        const int64_t n_sb = k / 256;
        auto* scale = reinterpret_cast<float*>(panel + k * k_gemm_rows);
        float* min = scale + (k / 32) * k_gemm_rows;
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i m16 = _mm256_set1_epi8(16);
        const __m256 sign = _mm256_set1_ps(-0.0f);
        // The minimums of a pair of sub-blocks, (m[2t], m[2t + 1]) per row, to 8 of each.
        const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        const __m256i keep[2] = {row_mask(n_rows), row_mask(n_rows - k_pack_rows)};
        for (int64_t b = 0; b < n_sb; ++b) {
            for (int g = 0; g < 2; ++g) {
                uint8_t* qs = panel + b * 256 * k_gemm_rows + 32 * g;
                float* sc = scale + b * 8 * k_gemm_rows + k_pack_rows * g;
                float* mn = min + b * 8 * k_gemm_rows + k_pack_rows * g;
                if (g == 1 && n_rows <= k_pack_rows) {
                    for (int s = 0; s < 8; ++s) {
                        _mm256_storeu_ps(sc + s * k_gemm_rows, _mm256_setzero_ps());
                        _mm256_storeu_ps(mn + s * k_gemm_rows, _mm256_setzero_ps());
                    }
                    for (int j = 0; j < 256; j += 4)
                        store(qs + j * k_gemm_rows, _mm256_setzero_si256());
                    continue;
                }
                const uint8_t* blk = groups + (g * n_sb + b) * k_sb_bytes;
                const __m256 keepf = _mm256_castsi256_ps(keep[g]);
                const __m256 d = load_f16x8(blk);
                const __m256 dmin = load_f16x8(blk + 16);
                for (int t = 0; t < 4; ++t) {
                    for (int i = 0; i < 2; ++i) {
                        const int s = 2 * t + i;
                        const __m256 sc8 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 32 + 8 * s))));
                        _mm256_storeu_ps(sc + s * k_gemm_rows,
                                         _mm256_and_ps(_mm256_mul_ps(d, sc8), keepf));
                    }
                    const __m128i pair = _mm_shuffle_epi8(
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 96 + 16 * t)),
                        split);
                    const __m256 m_lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(pair));
                    const __m256 m_hi =
                        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(pair, 8)));
                    _mm256_storeu_ps(
                        mn + 2 * t * k_gemm_rows,
                        _mm256_and_ps(_mm256_xor_ps(_mm256_mul_ps(dmin, m_lo), sign), keepf));
                    _mm256_storeu_ps(
                        mn + (2 * t + 1) * k_gemm_rows,
                        _mm256_and_ps(_mm256_xor_ps(_mm256_mul_ps(dmin, m_hi), sign), keepf));
                }
                for (int p = 0; p < 4; ++p) {
                    for (int h = 0; h < 2; ++h) {
                        __m256i qh = _mm256_setzero_si256();
                        if constexpr (five_bits)
                            qh = _mm256_and_si256(load(blk + 1184 + 64 * p + 32 * h), keep[g]);
                        for (int v = 4 * h; v < 4 * h + 4; ++v) {
                            const __m256i bits =
                                _mm256_and_si256(load(blk + 160 + 256 * p + 32 * v), keep[g]);
                            __m256i lo = _mm256_and_si256(bits, m4);
                            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                            if constexpr (five_bits) {
                                // As in run: bit v % 4 of qh to bit 4 of lo, bit 4 + v % 4 to
                                // bit 4 of hi.
                                const __m256i bl =
                                    _mm256_sll_epi16(qh, _mm_cvtsi32_si128(4 - v % 4));
                                const __m256i bh = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(v % 4));
                                lo = _mm256_or_si256(lo, _mm256_and_si256(bl, m16));
                                hi = _mm256_or_si256(hi, _mm256_and_si256(bh, m16));
                            }
                            store(qs + (64 * p + 4 * v) * k_gemm_rows, lo);
                            store(qs + (64 * p + 32 + 4 * v) * k_gemm_rows, hi);
                        }
                    }
                }
            }
        }
    }
};

}  // namespace
}  // namespace edgeq::cpu
