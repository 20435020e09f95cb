// The x86 run of packed Q6_K and its GEMM panel decoder (layout in pack-q6_k.cpp): a part of
// packed-x86.h, included inside its namespace after its helpers, and compiled with it for AVX2
// and AVX-512 VNNI.
#pragma once

// Per super-block, each 32-value span decodes into eight vectors, values 4v.. of all 8 rows:
// four of sub-block 2p (the low nibbles with their high bits, q) and four of sub-block 2p + 1
// (the high nibbles with theirs, as 4q: the layout puts those high bits at bits 6..7, so one
// shift of a high-bit vector serves two chunks). A sub-block's integer dot product, less 32
// times the activation's sum, is multiplied by the 8 rows' int8 scales in int32 lanes; the
// super-block's sum then by the rows' d and the activation's d in float, as the row reference
// does.
struct PQ6_K {
    template <int NA>
    static void run(int64_t k, const uint8_t* group, const uint8_t* a, size_t as, float* out,
                    int64_t os, int n_rows) {
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i m4x4 = _mm256_set1_epi8(0x3c);
        const __m256i high = _mm256_set1_epi8(0x30);
        const __m256i high_x4 = _mm256_set1_epi8(static_cast<char>(0xc0));
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 256; ++b) {
            const uint8_t* blk = group + b * 1680;
            prefetch_block<NA>(blk, 1680);
            const quant::BlockQ8_K* y[NA];
            __m256i sumi[NA];  // sum of the sub-blocks' scale times dot product
            for (int c = 0; c < NA; ++c) {
                y[c] = &act<quant::BlockQ8_K>(a, as, c, b);
                sumi[c] = _mm256_setzero_si256();
            }
#if EDGEQ_VNNI
            // The same for the odd sub-blocks, whose values come as 4q: four times theirs.
            __m256i sumi_x4[NA];
            for (int c = 0; c < NA; ++c) sumi_x4[c] = _mm256_setzero_si256();
            // Each sub-block's accumulator starts at -32 times the activation's sum (times 4 for
            // the odd sub-blocks).
            alignas(32) int32_t corr[NA][16];
            const __m256i corr_shift = _mm256_setr_epi32(5, 7, 5, 7, 5, 7, 5, 7);
            for (int c = 0; c < NA; ++c) {
                const __m256i bs = load(y[c]->bsums);
                for (int half = 0; half < 2; ++half) {
                    const __m256i s = _mm256_cvtepi16_epi32(
                        half == 0 ? _mm256_castsi256_si128(bs) : _mm256_extracti128_si256(bs, 1));
                    _mm256_store_si256(
                        reinterpret_cast<__m256i*>(corr[c] + 8 * half),
                        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sllv_epi32(s, corr_shift)));
                }
            }
#else
            // Sums of 2 * scale * the activation's sub-block sum; 16 times it is the offset's
            // share.
            __m256i off[NA];
            for (int c = 0; c < NA; ++c) off[c] = _mm256_setzero_si256();
#endif
            for (int p = 0; p < 8; ++p) {
                // Span p: the scales (16 bytes), the low bits (4 x 32), the high bits (2 x 32).
                const uint8_t* span = blk + 16 + 208 * p;
                __m256i u[2][4];
                for (int v = 0; v < 4; ++v) {
                    const __m256i bits = load(span + 16 + 32 * v);
                    u[0][v] = _mm256_and_si256(bits, m4);
                    u[1][v] = _mm256_and_si256(_mm256_srli_epi16(bits, 2), m4x4);
                }
                for (int j = 0; j < 2; ++j) {
                    const __m256i hb = load(span + 144 + 32 * j);
                    const __m256i hs = _mm256_slli_epi16(hb, 4);
                    u[0][2 * j] = _mm256_or_si256(u[0][2 * j], _mm256_and_si256(hb, high));
                    u[1][2 * j] = _mm256_or_si256(u[1][2 * j], _mm256_and_si256(hb, high_x4));
                    u[0][2 * j + 1] = _mm256_or_si256(u[0][2 * j + 1], _mm256_and_si256(hs, high));
                    u[1][2 * j + 1] =
                        _mm256_or_si256(u[1][2 * j + 1], _mm256_and_si256(hs, high_x4));
                }
                for (int h = 0; h < 2; ++h) {
                    const int g = 2 * p + h;
                    const __m128i sc8 =
                        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(span + 8 * h));
#if EDGEQ_VNNI
                    const __m256i sc = _mm256_cvtepi8_epi32(sc8);
                    for (int c = 0; c < NA; ++c) {
                        const int8_t* q = y[c]->qs + 16 * g;
                        __m256i s = _mm256_set1_epi32(corr[c][g]);
                        for (int v = 0; v < 4; ++v) s = dot_us_add_bcast4(s, u[h][v], q + 4 * v);
                        __m256i& sum = h == 0 ? sumi[c] : sumi_x4[c];
                        sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(s, sc));
                    }
#else
                    // 4q back to q: every byte's bits 0..1 are zero, so nothing crosses bytes.
                    if (h == 1) {
                        for (int v = 0; v < 4; ++v) u[1][v] = _mm256_srli_epi16(u[1][v], 2);
                    }
                    // The scale in both int16 halves of its row's lane; two pair sums of
                    // u * q (at most 2 * 63 * 127 each) add in int16 before it applies.
                    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(sc8, sc8));
                    for (int c = 0; c < NA; ++c) {
                        const int8_t* q = y[c]->qs + 16 * g;
                        const __m256i t0 =
                            _mm256_add_epi16(_mm256_maddubs_epi16(u[h][0], bcast4(q)),
                                             _mm256_maddubs_epi16(u[h][1], bcast4(q + 4)));
                        const __m256i t1 =
                            _mm256_add_epi16(_mm256_maddubs_epi16(u[h][2], bcast4(q + 8)),
                                             _mm256_maddubs_epi16(u[h][3], bcast4(q + 12)));
                        sumi[c] = _mm256_add_epi32(sumi[c],
                                                   _mm256_add_epi32(_mm256_madd_epi16(t0, sc16),
                                                                    _mm256_madd_epi16(t1, sc16)));
                        off[c] = _mm256_add_epi32(
                            off[c], _mm256_madd_epi16(sc16, _mm256_set1_epi16(y[c]->bsums[g])));
                    }
#endif
                }
            }
            const __m256 dw =
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
            for (int c = 0; c < NA; ++c) {
#if EDGEQ_VNNI
                // Exact: every term of sumi_x4 is a multiple of 4.
                sumi[c] = _mm256_add_epi32(sumi[c], _mm256_srai_epi32(sumi_x4[c], 2));
#else
                sumi[c] = _mm256_sub_epi32(sumi[c], _mm256_slli_epi32(off[c], 4));
#endif
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]),
                                         _mm256_mul_ps(dw, _mm256_set1_ps(y[c]->d)), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) store_rows(acc[c], out + c * os, n_rows);
    }
};

// The GEMM panel (gemm.h) from packed Q6_K, the bytes of the reference's decode_panel: values
// q (not 4q) and d times each sub-block's scale, rows 8g.. from group g.
inline void decode_panel_q6_k(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m4x4 = _mm256_set1_epi8(0x3c);
    const __m256i high = _mm256_set1_epi8(0x30);
    const __m256i high_x4 = _mm256_set1_epi8(static_cast<char>(0xc0));
    const int64_t n_blocks = k / 256;
    auto* scale = reinterpret_cast<float*>(panel + k * k_gemm_rows);
    const int n_groups = n_rows > k_pack_rows ? 2 : 1;
    for (int g = 0; g < 2; ++g) {
        const uint8_t* src = groups + static_cast<size_t>(g) * static_cast<size_t>(n_blocks) * 1680;
        for (int64_t b = 0; b < n_blocks; ++b) {
            uint8_t* qs = panel + b * 256 * k_gemm_rows + 32 * g;
            float* sc = scale + b * 16 * k_gemm_rows + k_pack_rows * g;
            auto put = [](uint8_t* p, __m256i v) {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
            };
            if (g >= n_groups) {
                for (int j = 0; j < 256; j += 4) put(qs + j * k_gemm_rows, _mm256_setzero_si256());
                for (int s = 0; s < 16; ++s)
                    _mm256_storeu_ps(sc + s * k_gemm_rows, _mm256_setzero_ps());
                continue;
            }
            const uint8_t* blk = src + b * 1680;
            const __m256 d =
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
            for (int p = 0; p < 8; ++p) {
                const uint8_t* span = blk + 16 + 208 * p;
                for (int h = 0; h < 2; ++h) {
                    const __m256i s8 = _mm256_cvtepi8_epi32(
                        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(span + 8 * h)));
                    _mm256_storeu_ps(sc + (2 * p + h) * k_gemm_rows,
                                     _mm256_mul_ps(d, _mm256_cvtepi32_ps(s8)));
                }
                for (int j = 0; j < 2; ++j) {
                    const __m256i hb[2] = {load(span + 144 + 32 * j),
                                           _mm256_slli_epi16(load(span + 144 + 32 * j), 4)};
                    for (int odd = 0; odd < 2; ++odd) {
                        const int v = 2 * j + odd;
                        const __m256i bits = load(span + 16 + 32 * v);
                        const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4),
                                                           _mm256_and_si256(hb[odd], high));
                        const __m256i hi_x4 =
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2), m4x4),
                                            _mm256_and_si256(hb[odd], high_x4));
                        put(qs + (32 * p + 4 * v) * k_gemm_rows, lo);
                        put(qs + (32 * p + 16 + 4 * v) * k_gemm_rows, _mm256_srli_epi16(hi_x4, 2));
                    }
                }
            }
        }
    }
}
