// The matmul driver: activations quantized once, then output rows spread over the pool.
// Generation (m == 1) streams each weight row once; prompt processing (m > 1) takes a chunk of
// weight rows that stays in cache and runs it against groups of k_max_acts activation rows,
// so that each weight block is decoded once per group.
#include "edgeq/runtime/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "../../quant/blocks.h"
#include "edgeq/core/error.h"
#include "edgeq/core/mapped-file.h"
#include "edgeq/quant/dtype.h"
#include "gemm.h"
#include "packed.h"
#include "vec-dot.h"

namespace edgeq::cpu {
namespace {

const KernelTable* table_of(Isa isa) {
    switch (isa) {
        case Isa::scalar:
            return &scalar_kernels();
        case Isa::avx2:
            return avx2_kernels();
        case Isa::avx512:
            return avx512_kernels();
    }
    return nullptr;
}

// The entry for `isa`, else the nearest ISA below it that has one.
template <typename Fn>
Fn pick(Isa isa, Fn KernelTable::*field) {
    for (int i = static_cast<int>(isa); i >= 0; --i) {
        const KernelTable* t = table_of(static_cast<Isa>(i));
        if (t != nullptr && t->*field != nullptr) return t->*field;
    }
    return nullptr;
}

template <typename Fn>
Fn pick_type(Isa isa, std::array<Fn, k_n_types> KernelTable::*field, GgmlType type) {
    if (type_index(type) >= k_n_types) return nullptr;
    for (int i = static_cast<int>(isa); i >= 0; --i) {
        const KernelTable* t = table_of(static_cast<Isa>(i));
        if (t != nullptr && (t->*field)[type_index(type)] != nullptr)
            return (t->*field)[type_index(type)];
    }
    return nullptr;
}

bool isa_available(Isa isa) {
    const CpuFeatures& f = cpu_features();
    const bool avx2 = f.avx2 && f.fma && f.f16c;
    return isa == Isa::scalar || (isa == Isa::avx2 && avx2) ||
           (isa == Isa::avx512 && avx2 && f.avx512f && f.avx512bw && f.avx512vl);
}

void quantize_with(Isa isa, GgmlType act, const float* x, void* dst, int64_t n) {
    switch (act) {
        case GgmlType::F32:
            std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
            return;
        case GgmlType::Q8_0:
            if (n % 32 != 0) fail("quantize_activations: {} values are not whole blocks of 32", n);
            pick(isa, &KernelTable::quantize_q8)(x, dst, n);
            return;
        case GgmlType::Q8_K:
            if (n % quant::k_qk_k != 0)
                fail("quantize_activations: {} values are not whole blocks of 256", n);
            pick(isa, &KernelTable::quantize_q8_k)(x, dst, n);
            return;
        default:
            fail("quantize_activations: {} is not an activation type", dtype(act).name);
    }
}

// Prompt processing on decoded weight panels (gemm.h): each thread decodes a panel of rows
// into its own buffer, then runs every activation group against it. decode(r0, n_rows, panel)
// writes the panel of rows r0..r0+n_rows-1.
template <typename Decode>
void gemm_matmul(const GemmKernel& kernel, GgmlType act, int64_t n_out, int64_t k, const uint8_t* a,
                 size_t a_row, int64_t m, float* y, ThreadPool& pool, MatmulScratch& scratch,
                 const Decode& decode) {
    const GemmActs acts =
        gemm_prepare_acts(act, a, a_row, m, k, kernel, scratch.gemm_activations, pool);
    const size_t panel_bytes = gemm_panel_bytes(k, kernel.sub_block);
    const auto n_threads = static_cast<size_t>(pool.size());
    if (scratch.gemm_panels.size() < n_threads) scratch.gemm_panels.resize(n_threads);
    for (size_t t = 0; t < n_threads; ++t) aligned_scratch(scratch.gemm_panels[t], panel_bytes);
    const int64_t n_panels = (n_out + k_gemm_rows - 1) / k_gemm_rows;
    const int64_t n_groups = (m + k_gemm_acts - 1) / k_gemm_acts;
    pool.parallel_for(n_panels, 1, [&](int64_t begin, int64_t end, int thread) {
        uint8_t* panel =
            aligned_scratch(scratch.gemm_panels[static_cast<size_t>(thread)], panel_bytes);
        for (int64_t p = begin; p < end; ++p) {
            const int64_t r0 = p * k_gemm_rows;
            const int n_rows = static_cast<int>(std::min<int64_t>(k_gemm_rows, n_out - r0));
            decode(r0, n_rows, panel);
            for (int64_t g = 0; g < n_groups; ++g) {
                const int n_acts =
                    static_cast<int>(std::min<int64_t>(k_gemm_acts, m - g * k_gemm_acts));
                kernel.run(panel, acts, g, n_acts, y + g * k_gemm_acts * n_out + r0, n_out, n_rows);
            }
        }
    });
}

// Quantizes the m activation rows x to `act` in scratch (F32 ones are used in place); returns
// the rows.
const uint8_t* quantize_rows(Isa isa, GgmlType act, const float* x, int64_t m, int64_t k,
                             size_t a_row, ThreadPool& pool, MatmulScratch& scratch) {
    if (act == GgmlType::F32) return reinterpret_cast<const uint8_t*>(x);
    const size_t bytes = a_row * static_cast<size_t>(m);
    if (scratch.activations.size() < bytes) scratch.activations.resize(bytes);
    uint8_t* dst = scratch.activations.data();
    if (m * k < (1 << 16)) {
        for (int64_t i = 0; i < m; ++i) quantize_with(isa, act, x + i * k, dst + i * a_row, k);
    } else {
        pool.parallel_for(m, std::max<int64_t>(1, (1 << 14) / k), [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) quantize_with(isa, act, x + i * k, dst + i * a_row, k);
        });
    }
    return dst;
}

}  // namespace

GgmlType activation_type(GgmlType weight) {
    switch (weight) {
        case GgmlType::F32:
        case GgmlType::F16:
        case GgmlType::BF16:
            return GgmlType::F32;
        case GgmlType::Q4_0:
        case GgmlType::Q4_1:
        case GgmlType::Q5_0:
        case GgmlType::Q5_1:
        case GgmlType::Q8_0:
        case GgmlType::IQ4_NL:
            return GgmlType::Q8_0;
        case GgmlType::Q2_K:
        case GgmlType::Q3_K:
        case GgmlType::Q4_K:
        case GgmlType::Q5_K:
        case GgmlType::Q6_K:
        case GgmlType::IQ4_XS:
        case GgmlType::TQ1_0:
        case GgmlType::TQ2_0:
            return GgmlType::Q8_K;
        default:
            fail("matmul: no kernel for {} weights", dtype(weight).name);
    }
}

size_t activation_row_size(GgmlType act, int64_t n) {
    switch (act) {
        case GgmlType::F32:
            return static_cast<size_t>(n) * sizeof(float);
        case GgmlType::Q8_0:
            return static_cast<size_t>(n / 32) * sizeof(ActBlockQ8);
        case GgmlType::Q8_K:
            return static_cast<size_t>(n / quant::k_qk_k) * sizeof(quant::BlockQ8_K);
        default:
            fail("matmul: {} is not an activation type", dtype(act).name);
    }
}

void quantize_activations(GgmlType act, const float* x, void* dst, int64_t n) {
    quantize_with(active_isa(), act, x, dst, n);
}

VecDotFn vec_dot(GgmlType weight, Isa isa) {
    if (!isa_available(isa)) return nullptr;
    return pick_type(isa, &KernelTable::dot, weight);
}

void matmul(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
            float* y, ThreadPool& pool, MatmulScratch& scratch) {
    matmul(type, w, n_out, k, x, m, y, pool, scratch, active_isa());
}

void matmul(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
            float* y, ThreadPool& pool, MatmulScratch& scratch, Isa isa) {
    const DType& t = dtype(type);
    if (!isa_available(isa)) fail("matmul: this CPU does not support {}", isa_name(isa));
    const MultiDotFn dot = pick_type(isa, &KernelTable::multi_dot, type);
    if (dot == nullptr) fail("matmul: no kernel for {} weights", t.name);
    if (k <= 0 || k % t.block_size != 0)
        fail("matmul: rows of {} values are not whole {} blocks", k, t.name);
    if (n_out <= 0 || m <= 0) return;

    // Activations, quantized once (F32 ones are used in place).
    const GgmlType act = activation_type(type);
    const size_t a_row = activation_row_size(act, k);
    const uint8_t* a = quantize_rows(isa, act, x, m, k, a_row, pool, scratch);

    const auto* wb = static_cast<const uint8_t*>(w);
    const size_t w_row = row_size(type, k);
    const int64_t n_threads = pool.size();
    if (m > 1) {
        const GemmKernel* gemm = pick_type(isa, &KernelTable::gemm, type);
        if (gemm != nullptr && m >= gemm->min_m) {
            gemm_matmul(*gemm, act, n_out, k, a, a_row, m, y, pool, scratch,
                        [&](int64_t r0, int n_rows, uint8_t* panel) {
                            gemm->decode(wb + static_cast<size_t>(r0) * w_row, w_row, n_rows, k,
                                         panel);
                        });
            return;
        }
    }
    if (m == 1) {
        // Bound by memory bandwidth: each weight row is read once; chunks small enough that
        // every thread gets several.
        const int64_t grain = std::clamp<int64_t>(n_out / (8 * n_threads), 1, 64);
        pool.parallel_for(n_out, grain, [&](int64_t begin, int64_t end, int) {
            for (int64_t r = begin; r < end; ++r) dot(k, wb + r * w_row, a, a_row, 1, y + r, n_out);
        });
        return;
    }
    // A chunk of weight rows of about 64 KiB stays in L2 while every group of activation rows
    // passes over it; each group's rows stay in L1 while the chunk's rows pass.
    int64_t rows = std::clamp<int64_t>(static_cast<int64_t>((64 << 10) / w_row), 4, 64);
    rows = std::max<int64_t>(1, std::min(rows, n_out / (4 * n_threads)));
    pool.parallel_for(n_out, rows, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = 0; i < m; i += k_max_acts) {
            const int n_acts = static_cast<int>(std::min<int64_t>(k_max_acts, m - i));
            for (int64_t r = begin; r < end; ++r)
                dot(k, wb + r * w_row, a + i * a_row, a_row, n_acts, y + i * n_out + r, n_out);
        }
    });
}

// ---- packed weights ----------------------------------------------------------------------------

PackedWeights::PackedWeights(GgmlType type, int64_t n_out, int64_t k, Isa isa,
                             const PackedKernel& kernel, const GemmKernel* gemm, uint8_t* data,
                             std::shared_ptr<const void> owner)
    : type_(type),
      n_out_(n_out),
      k_(k),
      isa_(isa),
      kernel_(&kernel),
      gemm_(gemm),
      group_bytes_(kernel.group_bytes(k)),
      data_(data),
      owner_(std::move(owner)) {}

bool packs(GgmlType type, Isa isa) {
    return isa_available(isa) && isa != Isa::scalar &&
           pick_type(isa, &KernelTable::packed, type) != nullptr;
}

size_t packed_bytes(GgmlType type, int64_t n_out, int64_t k, Isa isa) {
    if (!packs(type, isa) || n_out <= 0 || k <= 0) return 0;
    const PackedKernel* kernel = pick_type(isa, &KernelTable::packed, type);
    const size_t bytes =
        kernel->group_bytes(k) * static_cast<size_t>((n_out + k_pack_rows - 1) / k_pack_rows);
    return (bytes + PackedArena::k_align - 1) / PackedArena::k_align * PackedArena::k_align;
}

std::unique_ptr<PackedWeights> pack_weights(GgmlType type, const void* w, int64_t n_out, int64_t k,
                                            ThreadPool& pool, Isa isa, PackSource source,
                                            const std::shared_ptr<PackedArena>& arena) {
    if (!packs(type, isa) || n_out <= 0) return nullptr;
    const PackedKernel* kernel = pick_type(isa, &KernelTable::packed, type);
    const DType& t = dtype(type);
    if (k <= 0 || k % t.block_size != 0)
        fail("pack_weights: rows of {} values are not whole {} blocks", k, t.name);
    const GemmKernel* gemm = pick_type(isa, &KernelTable::gemm, type);
    if (kernel->decode_panel == nullptr) gemm = nullptr;  // no panels from the packed copy
    const size_t bytes = packed_bytes(type, n_out, k, isa);
    const std::shared_ptr<PackedArena> from = arena ? arena : PackedArena::create(bytes);
    auto packed = std::make_unique<PackedWeights>(type, n_out, k, isa, *kernel, gemm,
                                                  from->take(bytes), from);
    const auto* wb = static_cast<const uint8_t*>(w);
    const size_t w_row = row_size(type, k);
    const int64_t n_groups = packed->n_groups();
    // From a file mapping, 16 MiB of rows at a time: mapped in with one call, packed, then
    // given back, so that packing holds the packed copy and one chunk, not the matrix twice.
    const bool mapped = source == PackSource::file_mapping;
    const int64_t chunk =
        mapped
            ? std::max<int64_t>(1, (int64_t{16} << 20) / static_cast<int64_t>(w_row * k_pack_rows))
            : n_groups;
    size_t released = 0;  // bytes of rows given back so far
    for (int64_t g0 = 0; g0 < n_groups; g0 += chunk) {
        const int64_t g1 = std::min(n_groups, g0 + chunk);
        const size_t end = static_cast<size_t>(std::min(n_out, g1 * k_pack_rows)) * w_row;
        if (mapped) populate_mapped_range(wb + released, end - released);
        pool.parallel_for(g1 - g0, 4, [&](int64_t begin, int64_t stop, int) {
            for (int64_t g = g0 + begin; g < g0 + stop; ++g) {
                const int64_t r0 = g * k_pack_rows;
                const int n_rows = static_cast<int>(std::min<int64_t>(k_pack_rows, n_out - r0));
                kernel->pack(wb + static_cast<size_t>(r0) * w_row, w_row, n_rows, k,
                             packed->group(g));
            }
        });
        if (mapped) {
            // Whole pages only: from the page holding the last chunk's end (now all packed),
            // except at the matrix's start, whose first page may hold another tensor's bytes.
            const size_t page = mapped_page_size();
            const uintptr_t at = reinterpret_cast<uintptr_t>(wb) + released;
            const auto* from =
                released == 0 ? wb : reinterpret_cast<const uint8_t*>(at / page * page);
            release_mapped_range(from, static_cast<size_t>(wb + end - from));
            released = end;
        }
    }
    return packed;
}

bool uses_gemm(const PackedWeights& w, int64_t m) {
    const GemmKernel* gemm = w.gemm();
    if (m <= 1 || gemm == nullptr) return false;
    const int64_t min_m = w.kernel().gemm_min_m > 0 ? w.kernel().gemm_min_m : gemm->min_m;
    return m >= min_m;
}

void matmul(const PackedWeights& w, const float* x, int64_t m, float* y, ThreadPool& pool,
            MatmulScratch& scratch) {
    if (m <= 0) return;
    if (!uses_gemm(w, m)) {
        const PackedProduct product{&w, y};
        return matmul_shared(&product, 1, x, m, pool, scratch);
    }
    const int64_t k = w.k();
    const GgmlType act = activation_type(w.type());
    const size_t a_row = activation_row_size(act, k);
    const uint8_t* a = quantize_rows(w.isa(), act, x, m, k, a_row, pool, scratch);
    static_assert(k_gemm_rows == 2 * k_pack_rows);
    gemm_matmul(*w.gemm(), act, w.n_out(), k, a, a_row, m, y, pool, scratch,
                [&](int64_t r0, int n_rows, uint8_t* panel) {
                    w.kernel().decode_panel(w.group(r0 / k_pack_rows), n_rows, k, panel);
                });
}

void matmul_shared(const PackedProduct* products, int n_products, const float* x, int64_t m,
                   ThreadPool& pool, MatmulScratch& scratch) {
    if (n_products <= 0 || m <= 0) return;
    constexpr int k_max_products = 4;
    if (n_products > k_max_products)
        fail("matmul_shared: {} products, at most {}", n_products, k_max_products);
    const PackedWeights& first = *products[0].w;
    const int64_t k = first.k();
    const GgmlType act = activation_type(first.type());
    int64_t ends[k_max_products];  // one past each product's last group, over all products
    int64_t n_groups = 0;
    for (int i = 0; i < n_products; ++i) {
        const PackedWeights& w = *products[i].w;
        if (w.k() != k || w.isa() != first.isa() || activation_type(w.type()) != act)
            fail("matmul_shared: the products do not share k, ISA and activation type");
        if (uses_gemm(w, m))
            fail("matmul_shared: {} rows take the GEMM of a {} product", m, dtype(w.type()).name);
        n_groups += w.n_groups();
        ends[i] = n_groups;
    }
    const size_t a_row = activation_row_size(act, k);
    const uint8_t* a = quantize_rows(first.isa(), act, x, m, k, a_row, pool, scratch);
    // Each group read once, its blocks decoded once for up to k_max_acts activation rows. The
    // chunks start large, so that each thread streams long runs of the weights (every chunk's
    // first blocks are not prefetched, and a chunk's last prefetches land in another thread's
    // chunk), and shrink to k_min_groups to even out the threads at the end. TinyLlama Q4_0's
    // layers, 4 activation rows, 2 threads: 17.4 ms (chunks of at most 16 groups) -> 16.2 ms.
    constexpr int64_t k_min_groups = 4;
    pool.parallel_for_guided(n_groups, k_min_groups, [&](int64_t begin, int64_t end, int) {
        int i = 0;
        for (int64_t g = begin; g < end; ++g) {
            while (g >= ends[i]) ++i;
            const PackedWeights& w = *products[i].w;
            const int64_t n_out = w.n_out();
            const int64_t local = g - (i == 0 ? 0 : ends[i - 1]);
            const int64_t r0 = local * k_pack_rows;
            const int n_rows = static_cast<int>(std::min<int64_t>(k_pack_rows, n_out - r0));
            for (int64_t r = 0; r < m; r += k_max_acts) {
                const int n_acts = static_cast<int>(std::min<int64_t>(k_max_acts, m - r));
                w.kernel().run(k, w.group(local), a + r * a_row, a_row, n_acts,
                               products[i].y + r * n_out + r0, n_out, n_rows);
            }
        }
    });
}

}  // namespace edgeq::cpu
