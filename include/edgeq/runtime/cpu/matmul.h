// Matrix products of quantized weights and float activations, the runtime's hot loop.
//
//   cpu::MatmulScratch scratch;                       // reused across calls: no allocation
//   cpu::matmul(GgmlType::Q4_K, w, n_out, k, x, m, y, pool, scratch);
//   // y[i * n_out + r] = sum_j W[r][j] * x[i * k + j], for i < m, r < n_out
//
// Weights are n_out rows of k values of their GGML type, as a GGUF file holds them (row r at
// w + r * row_size(type, k)). Activations are quantized first to the format the weight type's
// dot product takes (activation_type()):
//   - Q8_0 for the 32-value formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL). These activation
//     rows are edgeq's own layout, not GGUF's Q8_0 blocks: per 32 values a float scale, the
//     int32 sum of the quants and 32 int8 quants (40 bytes; activation_row_size() gives a
//     row's bytes). The sums serve the formats with an offset or a minimum.
//   - Q8_K for the 256-value formats (Q2_K ... Q6_K, IQ4_XS, TQ1_0, TQ2_0), exactly GGUF's
//     Q8_K block (float scale, 256 int8, sums of each 16).
//   - F32 for F32, F16 and BF16 weights (the activations are used as they are).
// Each weight type has a scalar reference dot product; the common types have AVX2 and
// AVX-512 (VNNI) variants, chosen from active_isa() (EDGEQ_ISA forces one). With a few
// activation rows or more, AVX-512 VNNI runs most quantized types as a GEMM on weights decoded once
// per call (src/runtime/cpu/gemm.h). For a given ISA and m, results do not depend on the
// number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "edgeq/core/cpu.h"
#include "edgeq/core/tensor.h"
#include "edgeq/core/thread-pool.h"

namespace edgeq::cpu {

// The type activations are converted to before a dot product with `weight` rows; throws an
// Error for a weight type without kernels.
GgmlType activation_type(GgmlType weight);

// Bytes of one activation row of n values of `act` (an activation_type() result).
size_t activation_row_size(GgmlType act, int64_t n);

// Converts n floats (a multiple of the activation type's block size) to `act`, writing
// activation_row_size(act, n) bytes, with the active ISA's quantizer.
void quantize_activations(GgmlType act, const float* x, void* dst, int64_t n);

// *out = dot(weight row w, activation row a), both n values long.
using VecDotFn = void (*)(int64_t n, float* out, const void* w, const void* a);

// The dot product for `weight` rows on `isa`: that ISA's own kernel, else the best one below
// it (AVX-512 kernels need VNNI; without it AVX-512 uses the AVX2 ones); null if edgeq has
// none for that type or the CPU lacks the ISA.
VecDotFn vec_dot(GgmlType weight, Isa isa);

// Buffers a matmul reuses between calls (quantized activations, tiles).
struct MatmulScratch {
    std::vector<uint8_t> activations;
    std::vector<uint8_t> gemm_activations;          // prompt processing: regrouped activations
    std::vector<std::vector<uint8_t>> gemm_panels;  // and one decoded weight panel per thread
};

// y (m rows of n_out floats) = x (m rows of k floats) times the transpose of W (n_out rows of
// k values of `type`). Spread over the pool. Throws an Error for a type without a kernel or a
// k that is not a multiple of the type's block size.
void matmul(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
            float* y, ThreadPool& pool, MatmulScratch& scratch);

// As matmul, on the kernels of `isa` (for tests and benchmarks; the CPU must support it).
void matmul(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
            float* y, ThreadPool& pool, MatmulScratch& scratch, Isa isa);

struct PackedKernel;  // src/runtime/cpu/packed.h
struct GemmKernel;    // src/runtime/cpu/gemm.h

// Memory for packed weights: one anonymous mapping whose start is aligned to 2 MiB, backed by
// transparent huge pages where the kernel gives them, handed out in order. A model's packed
// copies share one arena so that all but its last partial 2 MiB sit in huge pages: a mapping
// per matrix leaves each one's unaligned ends, and every matrix under 2 MiB, in 4 KiB pages,
// whose TLB misses hold back the prefetches that stream the weights.
//
//   auto arena = cpu::PackedArena::create(total);      // total: the sum of packed_bytes()
//   auto packed = cpu::pack_weights(type, w, n_out, k, pool, isa, source, arena);
class PackedArena {
  public:
    // An arena of `capacity` bytes (each take() rounds up to k_align of them).
    static std::shared_ptr<PackedArena> create(size_t capacity);
    ~PackedArena();
    PackedArena(const PackedArena&) = delete;
    PackedArena& operator=(const PackedArena&) = delete;

    // The next `bytes` bytes, k_align-aligned; throws an Error past the capacity.
    uint8_t* take(size_t bytes);
    size_t capacity() const { return capacity_; }
    size_t used() const { return used_; }

    static constexpr size_t k_align = 64;

  private:
    PackedArena(uint8_t* base, size_t mapped, size_t capacity)
        : base_(base), mapped_(mapped), capacity_(capacity) {}
    uint8_t* base_;
    size_t mapped_;
    size_t capacity_;
    size_t used_ = 0;
};

// Weights rearranged once, at load, for one ISA's kernels: groups of 8 rows interleaved block
// by block (src/runtime/cpu/packed.h), about as many bytes as the rows. Generation then reads
// each group with one vector per four values of all 8 rows; prompt processing decodes its
// panels from the same copy, so the file's rows are not needed any more.
//
//   auto packed = cpu::pack_weights(GgmlType::Q4_0, w, n_out, k, pool);  // null: keep rows
//   if (packed) cpu::matmul(*packed, x, m, y, pool, scratch);
class PackedWeights {
  public:
    // The groups live at `data` (bytes() of them, in memory that `owner` keeps alive).
    PackedWeights(GgmlType type, int64_t n_out, int64_t k, Isa isa, const PackedKernel& kernel,
                  const GemmKernel* gemm, uint8_t* data, std::shared_ptr<const void> owner);
    GgmlType type() const { return type_; }
    int64_t n_out() const { return n_out_; }
    int64_t k() const { return k_; }
    Isa isa() const { return isa_; }
    size_t bytes() const { return group_bytes_ * static_cast<size_t>(n_groups()); }
    int64_t n_groups() const { return (n_out_ + 7) / 8; }
    size_t group_bytes() const { return group_bytes_; }
    const uint8_t* group(int64_t g) const { return data_ + static_cast<size_t>(g) * group_bytes_; }
    uint8_t* group(int64_t g) { return data_ + static_cast<size_t>(g) * group_bytes_; }
    const PackedKernel& kernel() const { return *kernel_; }
    const GemmKernel* gemm() const { return gemm_; }

  private:
    GgmlType type_;
    int64_t n_out_;
    int64_t k_;
    Isa isa_;
    const PackedKernel* kernel_;
    const GemmKernel* gemm_;
    size_t group_bytes_;
    uint8_t* data_;
    std::shared_ptr<const void> owner_;
};

// Where pack_weights' rows are: plain memory, or a read-only file mapping whose pages may be
// given back once packed (they are paged in again if read).
enum class PackSource { memory, file_mapping };

// The packed copy of n_out rows of k values of `type` (row r at w + r * row_size(type, k)),
// for the kernels of `isa`; null where that ISA has no packed layout for the type (the
// scalar ISA has none). Packing is spread over the pool. The copy is taken from `arena`, or
// from an arena of its own when none is given.
std::unique_ptr<PackedWeights> pack_weights(GgmlType type, const void* w, int64_t n_out, int64_t k,
                                            ThreadPool& pool, Isa isa = active_isa(),
                                            PackSource source = PackSource::memory,
                                            const std::shared_ptr<PackedArena>& arena = nullptr);

// Whether pack_weights packs `type` for `isa`.
bool packs(GgmlType type, Isa isa = active_isa());

// The arena bytes that pack_weights takes for such a matrix (a multiple of
// PackedArena::k_align), or 0 where it does not pack it.
size_t packed_bytes(GgmlType type, int64_t n_out, int64_t k, Isa isa = active_isa());

// One product of a group that shares its input (see matmul_shared).
struct PackedProduct {
    const PackedWeights* w;
    float* y;  // m rows of w->n_out() floats
};

// Whether matmul(w, x, m, ...) takes the GEMM (a panel per chunk of rows) rather than the runs
// over each group's blocks.
bool uses_gemm(const PackedWeights& w, int64_t m);

// y_i = x times the transpose of w_i for every product, x m rows of k floats, y_i m rows of
// w_i->n_out() floats: the products a decoder layer takes from one input (queries, keys and
// values; gate and up) as ONE job of the pool, the input quantized once. Each y_i is what
// matmul(*w_i, x, m, y_i) gives, bit for bit. The weights must share k, the ISA and the
// activation type, and m must be below every product's GEMM (uses_gemm false).
void matmul_shared(const PackedProduct* products, int n_products, const float* x, int64_t m,
                   ThreadPool& pool, MatmulScratch& scratch);

// y = x times the transpose of the packed weights, as matmul above (m rows of k floats in, m
// rows of n_out floats out), on the ISA the weights were packed for.
void matmul(const PackedWeights& w, const float* x, int64_t m, float* y, ThreadPool& pool,
            MatmulScratch& scratch);

}  // namespace edgeq::cpu
