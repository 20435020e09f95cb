// The F16 tile loader of the x86 attention (eight positions converted and transposed in
// registers) against the tile written from the dtype table's conversion, value by value:
// head widths below, at and above multiples of 8, tiles of 1..32 positions starting anywhere,
// interleaved heads, and the columns past the tile's positions zero.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "edgeq/quant/dtype.h"
#include "runtime/cpu/attention-kernels.h"
#include "test-random.h"

namespace edgeq {
namespace {

TEST(AttentionTile, F16LoaderMatchesRowConversion) {
    const cpu::LoadTileFn load = cpu::attention_load_f16_avx2();
    if (load == nullptr) GTEST_SKIP() << "this CPU lacks AVX2 + F16C";
    testing::Random random;
    SCOPED_TRACE(random.trace());
    constexpr int k_tile = cpu::k_attention_tile;
    for (int dk : {1, 3, 7, 8, 12, 64, 72, 80, 256}) {
        for (int dv : {1, 5, 8, 48, 64, 100}) {
            const int n_heads = random.uniform_int(1, 3), n_pos = 70;
            const int head = random.uniform_int(0, n_heads - 1);
            // One position's rows: every head's key, then every head's value.
            const size_t k_row = row_size(GgmlType::F16, dk), v_row = row_size(GgmlType::F16, dv);
            const size_t pos_stride = static_cast<size_t>(n_heads) * (k_row + v_row);
            std::vector<uint8_t> cache(static_cast<size_t>(n_pos) * pos_stride);
            for (int j = 0; j < n_pos; ++j) {
                uint8_t* at = cache.data() + static_cast<size_t>(j) * pos_stride;
                for (int h = 0; h < n_heads; ++h) {
                    const std::vector<float> kx = random.normal(static_cast<size_t>(dk), 3.0f);
                    const std::vector<float> vx = random.normal(static_cast<size_t>(dv), 3.0f);
                    dtype(GgmlType::F16).from_float_ref(kx.data(), at + h * k_row, dk);
                    dtype(GgmlType::F16)
                        .from_float_ref(vx.data(), at + n_heads * k_row + h * v_row, dv);
                }
            }
            const uint8_t* k_rows = cache.data() + static_cast<size_t>(head) * k_row;
            const uint8_t* v_rows = cache.data() + static_cast<size_t>(n_heads) * k_row +
                                    static_cast<size_t>(head) * v_row;
            const int dv_pad = (dv + 31) / 32 * 32;
            for (int trial = 0; trial < 6; ++trial) {
                const int n_cols = trial < 3
                                       ? std::vector<int>{1, 8, 32}[static_cast<size_t>(trial)]
                                       : random.uniform_int(1, k_tile);
                const int t0 = random.uniform_int(0, n_pos - n_cols);
                SCOPED_TRACE("dk " + std::to_string(dk) + " dv " + std::to_string(dv) + " t0 " +
                             std::to_string(t0) + " n_cols " + std::to_string(n_cols));
                // Stale values everywhere, as a reused scratch holds; the padding of each value
                // row must keep them.
                std::vector<float> kt(static_cast<size_t>(dk) * k_tile, 7.0f);
                std::vector<float> vt(static_cast<size_t>(k_tile) * dv_pad, 7.0f);
                load({k_rows, v_rows, pos_stride, pos_stride, t0, n_cols, dk, dv, dv_pad, kt.data(),
                      vt.data()});
                // Tile entry (j, d) of `what` against cache row t0 + j converted; `past` where
                // j or d lies past the positions or the row.
                std::vector<float> row(static_cast<size_t>(std::max(dk, dv)));
                int wrong = 0;
                const auto compare = [&](const char* what, const uint8_t* rows, int width, int n_d,
                                         float past, auto got_at) {
                    for (int j = 0; j < k_tile; ++j) {
                        if (j < n_cols) {
                            dtype(GgmlType::F16)
                                .to_float(rows + static_cast<size_t>(t0 + j) * pos_stride,
                                          row.data(), width);
                        }
                        for (int d = 0; d < n_d; ++d) {
                            const float want =
                                j < n_cols && d < width ? row[static_cast<size_t>(d)] : past;
                            const float got = got_at(j, d);
                            if (std::memcmp(&want, &got, sizeof(float)) != 0 && wrong++ < 5)
                                ADD_FAILURE() << what << " position " << j << " dim " << d << ": "
                                              << got << ", expected " << want;
                        }
                    }
                };
                compare("key", k_rows, dk, dk, 0.0f,
                        [&](int j, int d) { return kt[static_cast<size_t>(d * k_tile + j)]; });
                compare("value", v_rows, dv, dv_pad, 7.0f,
                        [&](int j, int d) { return vt[static_cast<size_t>(j * dv_pad + d)]; });
                EXPECT_EQ(wrong, 0);
            }
        }
    }
}

}  // namespace
}  // namespace edgeq
