// The GEMM's activation layout (see gemm.h): quantized activation rows regrouped so that the
// kernel reads every row of a group at fixed offsets from one pointer.
#include "gemm.h"

#include <algorithm>
#include <cstring>

#include "../../quant/blocks.h"
#include "edgeq/core/error.h"
#include "vec-dot.h"

namespace edgeq::cpu {

uint8_t* aligned_scratch(std::vector<uint8_t>& buffer, size_t bytes) {
    if (buffer.size() < bytes + 64) buffer.resize(bytes + 64);
    const auto address = reinterpret_cast<uintptr_t>(buffer.data());
    return buffer.data() + ((64 - address % 64) % 64);
}

GemmActs gemm_prepare_acts(GgmlType act, const uint8_t* a, size_t a_row, int64_t m, int64_t k,
                           const GemmKernel& kernel, std::vector<uint8_t>& storage,
                           ThreadPool& pool) {
    constexpr int A = k_gemm_acts;
    const int sb = kernel.sub_block;
    if (act == GgmlType::Q8_0 && sb != 32)
        fail("matmul: GEMM sub-blocks of {} values on 32-value activation blocks", sb);
    const int64_t n_groups = (m + A - 1) / A;
    const int64_t n_sub = k / sb;
    const auto n_qs = static_cast<size_t>(n_groups * k * A);
    const auto n_meta = static_cast<size_t>(n_groups * n_sub * A);
    uint8_t* base = aligned_scratch(storage, n_qs + 3 * n_meta * 4);
    auto* all_d = reinterpret_cast<float*>(base + n_qs);
    auto* all_corr = reinterpret_cast<int32_t*>(all_d + n_meta);
    auto* all_dsum = reinterpret_cast<float*>(all_corr + n_meta);
    GemmActs out;
    out.qs = reinterpret_cast<const int8_t*>(base);
    out.d = all_d;
    out.corr = all_corr;
    out.dsum = all_dsum;
    out.k = k;
    out.m = m;
    out.n_sub = n_sub;
    pool.parallel_for(n_groups, 1, [&](int64_t g_begin, int64_t g_end, int) {
        for (int64_t g = g_begin; g < g_end; ++g) {
            auto* qs = reinterpret_cast<int8_t*>(base) + g * k * A;
            float* d = all_d + g * n_sub * A;
            int32_t* corr = all_corr + g * n_sub * A;
            float* dsum = all_dsum + g * n_sub * A;
            for (int c = 0; c < A; ++c) {
                const int64_t i = g * A + c;
                if (i >= m) {
                    for (int64_t j = 0; j < k; j += 4) std::memset(qs + j * A + 4 * c, 0, 4);
                    for (int64_t s = 0; s < n_sub; ++s) {
                        d[s * A + c] = 0;
                        corr[s * A + c] = 0;
                        dsum[s * A + c] = 0;
                    }
                    continue;
                }
                const uint8_t* row = a + static_cast<size_t>(i) * a_row;
                for (int64_t s = 0; s < n_sub; ++s) {
                    const int8_t* q = nullptr;
                    float scale = 0;
                    int sum = 0;
                    if (act == GgmlType::Q8_0) {
                        // 32-value activation blocks; sub-blocks of 32 (every such type has them).
                        const auto& blk = reinterpret_cast<const ActBlockQ8*>(row)[s];
                        q = blk.qs;
                        scale = blk.d;
                        sum = blk.sum;
                    } else {
                        const int64_t j0 = s * sb;
                        const auto& blk = reinterpret_cast<const quant::BlockQ8_K*>(row)[j0 / 256];
                        const int64_t in = j0 % 256;
                        q = blk.qs + in;
                        scale = blk.d;
                        for (int64_t t = in / 16; t < (in + sb) / 16; ++t) sum += blk.bsums[t];
                    }
                    for (int j = 0; j < sb; j += 4)
                        std::memcpy(qs + (s * sb + j) * A + 4 * c, q + j, 4);
                    d[s * A + c] = scale;
                    corr[s * A + c] = -kernel.offset * sum;
                    dsum[s * A + c] = scale * static_cast<float>(sum);
                }
            }
        }
    });
    return out;
}

}  // namespace edgeq::cpu
