// MatMulNBits weights: edgeq's block quantizer written in ONNX Runtime's packing, the relayout
// of GGUF Q4_0 / Q8_0 blocks into it, and the dequantization the operator performs.
// No parser here (the inputs are in-memory arrays whose sizes the caller owns; the one external
// structure, dequantize's MatMulNBitsWeights, is size-checked), so no fuzz target.
#include "edgeq/formats/onnx-matmul-nbits.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../quant/blocks.h"
#include "../quant/fit-kernels.h"
#include "../quant/fit.h"
#include "edgeq/core/error.h"
#include "edgeq/core/half.h"
#include "edgeq/core/thread-pool.h"
#include "onnx-matmul-nbits-kernels.h"

namespace edgeq {
namespace {

constexpr int k_max_block = 128;
constexpr int k_max_refinements = 8;
constexpr int k_max_candidates = 64;
constexpr int k_exact_candidates = 4;  // best float-scored candidates compared in double

struct Geometry {
    int bits;
    int block_size;
    int64_t n_blocks;
    int64_t blob_bytes;    // bytes of one block of codes
    int64_t zp_row_bytes;  // bytes of one row of packed zero points
    int default_zp;        // 2^(bits - 1)
};

Geometry geometry(int bits, int block_size, int64_t n_out, int64_t n_in) {
    if (bits != 4 && bits != 8) fail("[matmul_nbits] bits {} not supported, expected 4 or 8", bits);
    if (block_size != 16 && block_size != 32 && block_size != 64 && block_size != 128) {
        fail("[matmul_nbits] block size {} not supported, expected 16, 32, 64 or 128", block_size);
    }
    if (n_out <= 0 || n_in <= 0) {
        fail("[matmul_nbits] matrix {} x {} is empty, expected positive N and K", n_out, n_in);
    }
    Geometry g;
    g.bits = bits;
    g.block_size = block_size;
    g.n_blocks = (n_in + block_size - 1) / block_size;
    g.blob_bytes = block_size * bits / 8;
    g.zp_row_bytes = (g.n_blocks * bits + 7) / 8;
    g.default_zp = 1 << (bits - 1);
    return g;
}

// Code k of a run of `bits`-bit codes, low bits first.
inline void set_code(uint8_t* bytes, int64_t k, int bits, int code) {
    if (bits == 8) {
        bytes[k] = static_cast<uint8_t>(code);
        return;
    }
    uint8_t& b = bytes[k / 2];
    b = k % 2 == 0 ? static_cast<uint8_t>((b & 0xf0) | code)
                   : static_cast<uint8_t>((b & 0x0f) | (code << 4));
}

inline int get_code(const uint8_t* bytes, int64_t k, int bits) {
    if (bits == 8) return bytes[k];
    return k % 2 == 0 ? bytes[k / 2] & 0x0f : bytes[k / 2] >> 4;
}

MatMulNBitsWeights allocate(const Geometry& g, int64_t n_out, int64_t n_in, bool symmetric) {
    MatMulNBitsWeights q;
    q.bits = g.bits;
    q.block_size = g.block_size;
    q.n_out = n_out;
    q.n_in = n_in;
    q.n_blocks = g.n_blocks;
    q.packed.assign(static_cast<size_t>(n_out * g.n_blocks * g.blob_bytes), 0);
    q.scales.assign(static_cast<size_t>(n_out * g.n_blocks), 0.0f);
    // Unused high nibbles of 4-bit zero points hold 8, as ONNX Runtime's quantizer leaves them.
    if (!symmetric) {
        q.zero_points.assign(static_cast<size_t>(n_out * g.zp_row_bytes),
                             g.bits == 4 ? uint8_t{0x88} : uint8_t{0x80});
    }
    return q;
}

float to_stored_scale(float s, bool fp16) {
    if (!std::isfinite(s)) fail("[matmul_nbits] block scale {} overflowed: weights too large", s);
    if (!fp16) return s;
    if (!(std::fabs(s) <= 65504.0f)) fail("[matmul_nbits] block scale {} does not fit F16", s);
    return fp16_to_fp32(fp32_to_fp16(s));
}

// One block of codes: x ~= scale * (code - zp), code in [0, 2^bits - 1].
struct BlockFit {
    float scale;
    int zp;
    int codes[k_max_block];
};

// A candidate: codes = zp + clamp(round(x * iscale), -zp, qmax - zp).
struct Candidate {
    float iscale;
    int zp;
};

// The search over one block (x, w hold n8 values, a multiple of 8; the tail past the block's n
// real values has weight 0). For a fixed zero point z, code - z is a symmetric fit with levels
// [-z, qmax - z]; for a fixed assignment the least-squares scale is sum(w x k) / sum(w k^2).
// Candidates (a grid of scales around round-to-nearest's, each with the zero point that puts
// the block's minimum on code 0 when asymmetric) are scored by the float kernels; the best few
// and round-to-nearest's own candidate are then scored in double (8-bit errors are below the
// float kernels' resolution), and the best is refined by alternating the least-squares scale
// with rounding (and, asymmetric, the neighbouring zero points) while the error falls. Starting
// from round-to-nearest's assignment, no block ends worse than round-to-nearest.
class BlockSearch {
  public:
    BlockSearch(const float* x, const float* w, int n, int n8, int bits, bool symmetric, bool clip)
        : x_(x),
          w_(w),
          n_(n),
          n8_(n8),
          qmax_((1 << bits) - 1),
          bits_(bits),
          symmetric_(symmetric),
          clip_(clip || !symmetric) {
        for (int i = 0; i < n8; ++i) sxx_ += static_cast<double>(w[i]) * x[i] * x[i];
    }

    void fit(bool fp16, BlockFit& out) {
        const Best found = search();
        const Candidate& best = found.c;
        const double sxq = found.sxq;
        const double sqq = found.sqq;
        out.zp = best.zp;
        out.scale = to_stored_scale(sqq > 0 ? static_cast<float>(sxq / sqq) : 0.0f, fp16);
        // Kept from the search unless the stored scale is rounded (F16): then re-round to it.
        const float iscale = !fp16 ? best.iscale : out.scale != 0 ? 1.0f / out.scale : 0.0f;
        for (int i = 0; i < n8_; ++i) out.codes[i] = code(x_[i], Candidate{iscale, best.zp});
    }

  private:
    int code(float v, const Candidate& c) const {
        return quant::round_clamp(v * c.iscale, -c.zp, qmax_ - c.zp) + c.zp;
    }

    // Error of a candidate with its least-squares scale, in double (sums through the ISA's
    // exact_sums; n8_ is a multiple of 8).
    double exact(const Candidate& c, double* sxq_out, double* sqq_out) const {
        exact_sums_(x_, w_, n8_, c.iscale, static_cast<float>(-c.zp),
                    static_cast<float>(qmax_ - c.zp), sxq_out, sqq_out);
        const double sxq = *sxq_out;
        const double sqq = *sqq_out;
        return sqq > 0 ? std::max(0.0, sxx_ - sxq * sxq / sqq) : sxx_;
    }

    // The search's result with its exact sums.
    struct Best {
        Candidate c;
        double sxq = 0;
        double sqq = 0;
    };

    Best search() const {
        const int z_sym = 1 << (bits_ - 1);
        float lo = x_[0];
        float hi = x_[0];
        float m = 0;  // the value of largest magnitude
        for (int i = 0; i < n_; ++i) {
            lo = std::min(lo, x_[i]);
            hi = std::max(hi, x_[i]);
            if (std::fabs(x_[i]) > std::fabs(m)) m = x_[i];
        }
        if (m == 0) return {{0.0f, symmetric_ ? z_sym : 0}, 0.0, 0.0};
        Candidate cand[k_max_candidates];
        int n_cand = 0;
        Candidate rtn;
        if (symmetric_) {
            // m on the most negative level (round-to-nearest's choice), or on the most positive;
            // beyond them (clipping m) only when clip_.
            const quant::Grid grid =
                bits_ == 4 ? (clip_ ? quant::Grid{4, 20, 0.2f} : quant::Grid{8, 0, 0.2f})
                           : (clip_ ? quant::Grid{4, 16, 1.0f} : quant::Grid{8, 0, 1.0f});
            rtn = {-static_cast<float>(z_sym) / m, z_sym};
            for (int side = 0; side < 2; ++side) {
                const float edge = static_cast<float>(side == 0 ? z_sym : qmax_ - z_sym);
                for (int k = -grid.n_below; k <= grid.n_above && n_cand < k_max_candidates; ++k) {
                    const float level = edge + static_cast<float>(k) * grid.step;
                    if (level > 0.5f) cand[n_cand++] = {(side == 0 ? -level : level) / m, z_sym};
                }
            }
        } else {
            // Round-to-nearest spreads the range widened to hold zero over all levels.
            const float rlo = std::min(lo, 0.0f);
            const float rhi = std::max(hi, 0.0f);
            const float r_iscale = static_cast<float>(qmax_) / (rhi - rlo);
            rtn = {r_iscale, quant::round_clamp(-rlo * r_iscale, 0, qmax_)};
            if (hi > lo) {
                const quant::Grid grid =
                    bits_ == 4 ? quant::Grid{6, 24, 0.25f} : quant::Grid{4, 16, 1.0f};
                for (int k = -grid.n_below; k <= grid.n_above && n_cand < k_max_candidates; ++k) {
                    const float levels =
                        static_cast<float>(qmax_) + static_cast<float>(k) * grid.step;
                    if (levels < 1) continue;
                    const float iscale = levels / (hi - lo);
                    cand[n_cand++] = {iscale, quant::round_clamp(-lo * iscale, 0, qmax_)};
                }
            } else {  // constant: one level carries it exactly
                cand[n_cand++] = {1.0f / std::fabs(lo), lo < 0 ? 1 : 0};
            }
        }
        // Float scores for all candidates; the best few go on to the exact comparison.
        const quant::FitKernels& kernels = quant::fit_kernels();
        float score[k_max_candidates];
        float sxq[k_max_candidates];
        float sqq[k_max_candidates];
        if (symmetric_) {  // one zero point: one batch
            float iscale[k_max_candidates];
            for (int c = 0; c < n_cand; ++c) iscale[c] = cand[c].iscale;
            kernels.symmetric_sums(x_, w_, n8_, iscale, n_cand, static_cast<float>(-z_sym),
                                   static_cast<float>(qmax_ - z_sym), sxq, sqq);
        } else {
            for (int c = 0; c < n_cand; ++c) {
                kernels.symmetric_sums(x_, w_, n8_, &cand[c].iscale, 1,
                                       static_cast<float>(-cand[c].zp),
                                       static_cast<float>(qmax_ - cand[c].zp), &sxq[c], &sqq[c]);
            }
        }
        for (int c = 0; c < n_cand; ++c) score[c] = sqq[c] > 0 ? sxq[c] * sxq[c] / sqq[c] : -1.0f;
        int order[k_max_candidates];
        for (int c = 0; c < n_cand; ++c) order[c] = c;
        const int n_top = std::min(n_cand, k_exact_candidates);
        std::partial_sort(order, order + n_top, order + n_cand,
                          [&](int a, int b) { return score[a] > score[b]; });
        Best best{rtn, 0.0, 0.0};
        double best_error = exact(rtn, &best.sxq, &best.sqq);
        for (int t = 0; t < n_top; ++t) {
            double sxq;
            double sqq;
            const double e = exact(cand[order[t]], &sxq, &sqq);
            if (e < best_error) {
                best_error = e;
                best = {cand[order[t]], sxq, sqq};
            }
        }
        for (int it = 0; it < k_max_refinements; ++it) {
            if (!(best.sxq != 0 && best.sqq > 0)) break;
            const float next = static_cast<float>(best.sqq / best.sxq);
            if (!clip_) {
                // m must stay within the levels of its side (within float rounding).
                const float t = m * next;
                const float edge = static_cast<float>(t < 0 ? z_sym : qmax_ - z_sym);
                if (std::fabs(t) > edge * (1 + 1e-6f)) break;
            }
            bool improved = false;
            const int z0 = best.c.zp;
            const int z_lo = symmetric_ ? z0 : std::max(0, z0 - 1);
            const int z_hi = symmetric_ ? z0 : std::min(qmax_, z0 + 1);
            for (int z = z_lo; z <= z_hi; ++z) {
                double sxq;
                double sqq;
                const double e = exact({next, z}, &sxq, &sqq);
                if (e < best_error * (1 - 1e-12)) {
                    best_error = e;
                    best = {{next, z}, sxq, sqq};
                    improved = true;
                }
            }
            if (!improved) break;
        }
        return best;
    }

    const float* x_;
    const float* w_;
    int n_;
    int n8_;
    int qmax_;
    int bits_;
    bool symmetric_;
    bool clip_;
    double sxx_ = 0;
    nbits::ExactSums exact_sums_ = nbits::exact_sums();
};

void quantize_rows(const float* w, int64_t n_in, const MatMulNBitsOptions& options,
                   const Geometry& g, MatMulNBitsWeights& q, int64_t row_begin, int64_t row_end) {
    float x[k_max_block];
    float wt[k_max_block];
    BlockFit fit;
    for (int64_t r = row_begin; r < row_end; ++r) {
        for (int64_t b = 0; b < g.n_blocks; ++b) {
            const int64_t k0 = b * g.block_size;
            const int n = static_cast<int>(std::min<int64_t>(g.block_size, n_in - k0));
            const int n8 = (n + 7) / 8 * 8;
            const float* src = w + r * n_in + k0;
            for (int i = 0; i < n; ++i) {
                if (!std::isfinite(src[i])) {
                    fail("[matmul_nbits] weight row {} column {} is {}, expected a finite value", r,
                         k0 + i, src[i]);
                }
                x[i] = src[i];
            }
            quant::group_weights(options.importance ? options.importance + k0 : nullptr, n, wt);
            if (options.importance == nullptr && options.magnitude_weights) {
                double sum_x2 = 0;
                for (int i = 0; i < n; ++i) sum_x2 += static_cast<double>(x[i]) * x[i];
                const float sigma2 = static_cast<float>(2 * sum_x2 / n);
                for (int i = 0; i < n; ++i) wt[i] = sigma2 + x[i] * x[i];
            }
            std::fill(x + n, x + n8, 0.0f);
            std::fill(wt + n, wt + n8, 0.0f);
            BlockSearch(x, wt, n, n8, g.bits, options.symmetric, options.clip)
                .fit(options.fp16_scales, fit);
            uint8_t* blob = q.packed.data() + (r * g.n_blocks + b) * g.blob_bytes;
            for (int i = 0; i < g.block_size; ++i)
                set_code(blob, i, g.bits, i < n ? fit.codes[i] : fit.zp);
            q.scales[static_cast<size_t>(r * g.n_blocks + b)] = fit.scale;
            if (!options.symmetric)
                set_code(q.zero_points.data() + r * g.zp_row_bytes, b, g.bits, fit.zp);
        }
    }
}

}  // namespace

MatMulNBitsWeights quantize_matmul_nbits(const float* w, int64_t n_out, int64_t n_in,
                                         const MatMulNBitsOptions& options) {
    const Geometry g = geometry(options.bits, options.block_size, n_out, n_in);
    MatMulNBitsWeights q = allocate(g, n_out, n_in, options.symmetric);
    if (options.pool != nullptr) {
        options.pool->parallel_for(n_out, std::max<int64_t>(1, 16384 / n_in),
                                   [&](int64_t begin, int64_t end, int) {
                                       quantize_rows(w, n_in, options, g, q, begin, end);
                                   });
    } else {
        quantize_rows(w, n_in, options, g, q, 0, n_out);
    }
    return q;
}

std::optional<MatMulNBitsWeights> carry_matmul_nbits(GgmlType type, const void* data, int64_t n_out,
                                                     int64_t n_in) {
    if (type != GgmlType::Q4_0 && type != GgmlType::Q8_0) return std::nullopt;
    const int bits = type == GgmlType::Q4_0 ? 4 : 8;
    const Geometry g = geometry(bits, quant::k_qk_32, n_out, n_in);
    if (n_in % quant::k_qk_32 != 0) {
        fail("[matmul_nbits] {} row of {} values is not a whole number of 32-value blocks",
             type == GgmlType::Q4_0 ? "Q4_0" : "Q8_0", n_in);
    }
    MatMulNBitsWeights q = allocate(g, n_out, n_in, true);
    const int64_t n_total = n_out * g.n_blocks;
    if (type == GgmlType::Q4_0) {
        // Q4_0 holds value j in the low nibble of qs[j % 16] for j < 16 and the high nibble for
        // j >= 16; MatMulNBits holds value j in nibble j % 2 of byte j / 2. Same codes, same
        // zero point (8), same F16 scale: only the nibbles move.
        const auto* blocks = static_cast<const quant::BlockQ4_0*>(data);
        for (int64_t i = 0; i < n_total; ++i) {
            q.scales[static_cast<size_t>(i)] = fp16_to_fp32(blocks[i].d);
            uint8_t* blob = q.packed.data() + i * g.blob_bytes;
            for (int j = 0; j < quant::k_qk_32; ++j) {
                const int code = j < 16 ? blocks[i].qs[j] & 0x0f : blocks[i].qs[j - 16] >> 4;
                set_code(blob, j, 4, code);
            }
        }
    } else {
        // Q8_0's int8 q is code - 128 with MatMulNBits' default 8-bit zero point.
        const auto* blocks = static_cast<const quant::BlockQ8_0*>(data);
        for (int64_t i = 0; i < n_total; ++i) {
            q.scales[static_cast<size_t>(i)] = fp16_to_fp32(blocks[i].d);
            uint8_t* blob = q.packed.data() + i * g.blob_bytes;
            for (int j = 0; j < quant::k_qk_32; ++j)
                blob[j] = static_cast<uint8_t>(blocks[i].qs[j] + 128);
        }
    }
    return q;
}

std::vector<float> dequantize_matmul_nbits(const MatMulNBitsWeights& q) {
    const Geometry g = geometry(q.bits, q.block_size, q.n_out, q.n_in);
    const bool symmetric = q.zero_points.empty();
    if (q.n_blocks != g.n_blocks ||
        q.packed.size() != static_cast<size_t>(q.n_out * g.n_blocks * g.blob_bytes) ||
        q.scales.size() != static_cast<size_t>(q.n_out * g.n_blocks) ||
        (!symmetric && q.zero_points.size() != static_cast<size_t>(q.n_out * g.zp_row_bytes))) {
        fail(
            "[matmul_nbits] weights of {} x {} in {}-bit blocks of {} have inconsistent sizes "
            "(n_blocks {}, packed {}, scales {}, zero points {})",
            q.n_out, q.n_in, q.bits, q.block_size, q.n_blocks, q.packed.size(), q.scales.size(),
            q.zero_points.size());
    }
    std::vector<float> out(static_cast<size_t>(q.n_out * q.n_in));
    for (int64_t r = 0; r < q.n_out; ++r) {
        for (int64_t b = 0; b < g.n_blocks; ++b) {
            const uint8_t* blob = q.packed.data() + (r * g.n_blocks + b) * g.blob_bytes;
            const float s = q.scales[static_cast<size_t>(r * g.n_blocks + b)];
            const int zp = symmetric
                               ? g.default_zp
                               : get_code(q.zero_points.data() + r * g.zp_row_bytes, b, q.bits);
            const int64_t k0 = b * g.block_size;
            const int n = static_cast<int>(std::min<int64_t>(g.block_size, q.n_in - k0));
            float* y = out.data() + r * q.n_in + k0;
            for (int i = 0; i < n; ++i)
                y[i] = s * static_cast<float>(get_code(blob, i, q.bits) - zp);
        }
    }
    return out;
}

}  // namespace edgeq
