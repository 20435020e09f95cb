// The decoder graph, built from the runtime's ModelSpec. The hidden state is kept as a matrix
// [batch * seq, n_embd] so that every projection is one Gemm against the weight as GGUF stores
// it (n_out rows of n_in, transB = 1): no transposed copies, and a tied output shares the
// embedding's initializer.
#include "edgeq/model/onnx-export.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "edgeq/core/error.h"
#include "edgeq/core/half.h"
#include "edgeq/formats/onnx-matmul-nbits.h"
#include "edgeq/formats/onnx-writer.h"
#include "edgeq/model/model-spec.h"
#include "edgeq/quant/dtype.h"

namespace edgeq {
namespace {

constexpr int64_t k_slab_values = int64_t{1} << 20;  // values converted per chunk written
constexpr double k_heavy_kurtosis = 0.1;  // excess kurtosis above which weights are not Gaussian

// E[(x - mean)^4] / var^2 - 3: 0 for Gaussian values.
double excess_kurtosis(const std::vector<float>& v) {
    double mean = 0;
    for (float x : v) mean += x;
    mean /= static_cast<double>(v.size());
    double m2 = 0, m4 = 0;
    for (float x : v) {
        const double d = (x - mean) * (x - mean);
        m2 += d;
        m4 += d * d;
    }
    m2 /= static_cast<double>(v.size());
    m4 /= static_cast<double>(v.size());
    return m2 > 0 ? m4 / (m2 * m2) - 3 : 0;
}

struct Exporter {
    const GgufFile& file;
    const ModelSpec& s;
    const OnnxExportOptions& options;
    ThreadPool& pool;
    OnnxWriter& w;
    OnnxExportReport report;

    // Values shared by every layer.
    std::string bs_shape;                 // [batch, seq]
    std::string mask_global, mask_local;  // additive, [batch, 1, group * seq, total_seq]
    std::string bias_global, bias_local;  // the same, [batch, 1, seq, total_seq] (GQA)
    std::string seqlens_k, total_len;     // GQA: int32 [batch] total - 1, int32 scalar total
    std::string cos_global, sin_global, cos_local, sin_local;  // [batch, seq, 1, n_rot / 2]

    const GgufTensorInfo& tensor(const std::string& name) const {
        const GgufTensorInfo* t = file.find_tensor(name);
        if (t == nullptr) fail("{}: tensor {} is missing", file.path(), name);
        return *t;
    }

    // Output row r of a Q or K weight of Llama (GGUF's adjacent-pair order) reads this row:
    // Hugging Face's row t * half + j of a head is GGUF's row 2 * j + t.
    static int64_t unpermuted_row(int64_t r, int64_t head_rows) {
        const int64_t head = r / head_rows, i = r % head_rows, half = head_rows / 2;
        return head * head_rows + (i % half) * 2 + i / half;
    }

    // The GGUF tensor `name`, checked to be n_out rows of n_in values edgeq can dequantize.
    const GgufTensorInfo& weight(const std::string& name, int64_t n_in, int64_t n_out) const {
        const GgufTensorInfo& t = tensor(name);
        if (t.shape.size() != 2 || t.shape[0] != n_in || t.shape[1] != n_out)
            fail("{}: tensor {} is not {} x {}", file.path(), name, n_in, n_out);
        const DType& d = dtype(t.type);
        if (d.to_float == nullptr || n_in % d.block_size != 0)
            fail("{}: tensor {} has type {}, which edgeq cannot dequantize", file.path(), name,
                 d.name);
        return t;
    }

    // Rows r0 .. r0 + n of weight t as floats; `head_rows` > 0 un-permutes Llama's Q/K rows.
    void read_rows(const GgufTensorInfo& t, int64_t r0, int64_t n, int64_t head_rows, float* dst) {
        const int64_t n_in = t.shape[0];
        const DType& d = dtype(t.type);
        const size_t src_row = row_size(t.type, n_in);
        const uint8_t* src = file.tensor_data(t);
        pool.parallel_for(n, 16, [&](int64_t begin, int64_t end, int) {
            for (int64_t r = begin; r < end; ++r) {
                const int64_t row = r0 + r;
                const int64_t in = head_rows > 0 ? unpermuted_row(row, head_rows) : row;
                d.to_float(src + static_cast<size_t>(in) * src_row, dst + r * n_in, n_in);
            }
        });
    }

    // A weight matrix (n_out rows of n_in) as an initializer [n_out, n_in] of float32, or of
    // float16 when `half` (then Cast to float32 in the graph unless `raw`).
    std::string matrix(const std::string& name, int64_t n_in, int64_t n_out, int64_t head_rows = 0,
                       bool half = false, bool raw = false) {
        const GgufTensorInfo& t = weight(name, n_in, n_out);
        report.n_weights += n_in * n_out;
        const std::string init = w.add_initializer(
            name, half ? OnnxType::float16 : OnnxType::float32, {n_out, n_in},
            [&](const auto& sink) {
                const int64_t slab = std::max<int64_t>(1, k_slab_values / n_in);
                std::vector<float> floats(static_cast<size_t>(std::min(slab, n_out) * n_in));
                std::vector<uint16_t> halves(half ? floats.size() : 0);
                for (int64_t r0 = 0; r0 < n_out; r0 += slab) {
                    const int64_t n = std::min(slab, n_out - r0);
                    read_rows(t, r0, n, head_rows, floats.data());
                    const size_t n_values = static_cast<size_t>(n * n_in);
                    if (half) {
                        fp32_to_fp16_row(floats.data(), halves.data(),
                                         static_cast<int64_t>(n_values));
                        sink({reinterpret_cast<const uint8_t*>(halves.data()), n_values * 2});
                    } else {
                        sink({reinterpret_cast<const uint8_t*>(floats.data()), n_values * 4});
                    }
                }
            });
        file.release(t);
        return half && !raw ? w.node("Cast", {init}, {{"to", int64_t{1}}}) : init;
    }

    // Weight `name` quantized for MatMulNBits (carried over unchanged when its GGUF blocks are
    // the operator's), one slab of rows at a time.
    MatMulNBitsWeights quantized(const std::string& name, int64_t n_in, int64_t n_out,
                                 int64_t head_rows, int bits) {
        const GgufTensorInfo& t = weight(name, n_in, n_out);
        report.n_weights += n_in * n_out;
        MatMulNBitsOptions q;
        q.bits = bits;
        q.block_size = options.block_size;
        q.symmetric = options.symmetric;
        // bench/onnx_vs_ort.py: Gemma 3 270M's KL divergence to its F16 model is lowest when a
        // block's largest weight stays on a level and, symmetric, large weights count more
        // (0.465 against 0.605 at block 128); the Gaussian weights of the synthetic 1.1B model
        // do best with plain least squares. The slab's kurtosis tells them apart (below).
        q.pool = &pool;
        const bool carry =
            options.symmetric && options.block_size == 32 &&
            ((bits == 4 && t.type == GgmlType::Q4_0) || (bits == 8 && t.type == GgmlType::Q8_0));
        MatMulNBitsWeights all;
        const int64_t slab = std::max<int64_t>(1, k_slab_values / n_in);
        std::vector<float> floats;
        const size_t src_row = row_size(t.type, n_in);
        for (int64_t r0 = 0; r0 < n_out; r0 += slab) {
            const int64_t n = std::min(slab, n_out - r0);
            std::vector<MatMulNBitsWeights> parts;
            if (carry) {
                // Row by row when Llama's rows are put back in order.
                const int64_t step = head_rows > 0 ? 1 : n;
                for (int64_t r = 0; r < n; r += step) {
                    const int64_t row = head_rows > 0 ? unpermuted_row(r0 + r, head_rows) : r0 + r;
                    parts.push_back(*carry_matmul_nbits(
                        t.type, file.tensor_data(t) + static_cast<size_t>(row) * src_row, step,
                        n_in));
                }
            } else {
                floats.resize(static_cast<size_t>(n * n_in));
                read_rows(t, r0, n, head_rows, floats.data());
                // Heavy-tailed weights (trained ones): keep each block's largest value on a
                // level and favour large values; near-Gaussian ones: least squared error.
                const bool heavy = excess_kurtosis(floats) > k_heavy_kurtosis;
                q.clip = !heavy;
                q.magnitude_weights = heavy && options.symmetric;
                parts.push_back(quantize_matmul_nbits(floats.data(), n, n_in, q));
            }
            for (MatMulNBitsWeights& p : parts) {
                if (all.n_out == 0) {
                    all = std::move(p);
                    continue;
                }
                all.n_out += p.n_out;
                all.packed.insert(all.packed.end(), p.packed.begin(), p.packed.end());
                all.scales.insert(all.scales.end(), p.scales.begin(), p.scales.end());
                all.zero_points.insert(all.zero_points.end(), p.zero_points.begin(),
                                       p.zero_points.end());
            }
        }
        file.release(t);
        return all;
    }

    // Bits of the layer matrices (0: float).
    int layer_bits() const {
        return options.precision == OnnxPrecision::int4   ? 4
               : options.precision == OnnxPrecision::int8 ? 8
                                                          : 0;
    }

    // x [rows, n_in] times weight `name` transposed (+ bias): [rows, n_out]. `bits` > 0
    // quantizes the weight: MatMulNBits with ort ops, its dequantized values with standard ops.
    std::string project(const std::string& x, const std::string& name, int64_t n_in, int64_t n_out,
                        int64_t head_rows = 0, const std::string& bias = {}, int bits = -1) {
        if (bits < 0) bits = layer_bits();
        if (bits == 0)
            return gemm(
                x, matrix(name, n_in, n_out, head_rows, options.precision == OnnxPrecision::fp16),
                bias);
        const MatMulNBitsWeights q = quantized(name, n_in, n_out, head_rows, bits);
        auto bytes = [](const auto& v) {
            return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()),
                                            v.size() * sizeof(v[0]));
        };
        if (options.ops == OnnxOps::standard) {
            // Opset 17 has no block-wise DequantizeLinear: the weights the quantizer chose,
            // stored as float.
            const std::vector<float> values = dequantize_matmul_nbits(q);
            const std::string init =
                w.add_initializer(name, OnnxType::float32, {n_out, n_in},
                                  [&](const auto& sink) { sink(bytes(values)); });
            return gemm(x, init, bias);
        }
        const int64_t blob = q.block_size * q.bits / 8;
        std::vector<std::string> inputs{
            x,
            w.add_initializer(name + ".qweight", OnnxType::uint8, {n_out, q.n_blocks, blob},
                              [&](const auto& sink) { sink(bytes(q.packed)); }),
            // Two-dimensional, as ORT's own quantizer writes them (TinyLlama int4 b32 on 2
            // threads ran ~2% faster in ORT, best of 5, than with flat [N * n_blocks] scales).
            w.add_initializer(name + ".scales", OnnxType::float32, {n_out, q.n_blocks},
                              [&](const auto& sink) { sink(bytes(q.scales)); })};
        if (!q.zero_points.empty())
            inputs.push_back(
                w.add_initializer(name + ".zero_points", OnnxType::uint8,
                                  {n_out, static_cast<int64_t>(q.zero_points.size()) / n_out},
                                  [&](const auto& sink) { sink(bytes(q.zero_points)); }));
        std::string y = w.node("MatMulNBits", inputs,
                               {{"K", n_in},
                                {"N", n_out},
                                {"bits", int64_t{q.bits}},
                                {"block_size", int64_t{q.block_size}},
                                {"accuracy_level", int64_t{options.accuracy_level}}},
                               "com.microsoft");
        if (!bias.empty()) y = w.node("Add", {y, bias});
        return y;
    }

    // A vector (norm weight or bias) as a float32 initializer; `head_rows` as for matrix().
    std::string vector(const std::string& name, int64_t n, int64_t head_rows = 0) {
        const GgufTensorInfo& t = tensor(name);
        if (t.n_elements() != n)
            fail("{}: tensor {} has {} values, expected {}", file.path(), name, t.n_elements(), n);
        const DType& d = dtype(t.type);
        if (d.to_float == nullptr || n % d.block_size != 0)
            fail("{}: tensor {} has type {}, which edgeq cannot read", file.path(), name, d.name);
        std::vector<float> v(static_cast<size_t>(n)), out(static_cast<size_t>(n));
        d.to_float(file.tensor_data(t), v.data(), n);
        for (int64_t i = 0; i < n; ++i)
            out[static_cast<size_t>(i)] =
                v[static_cast<size_t>(head_rows > 0 ? unpermuted_row(i, head_rows) : i)];
        report.n_weights += n;
        return w.add_initializer(name, OnnxType::float32, {n}, [&](const auto& sink) {
            sink({reinterpret_cast<const uint8_t*>(out.data()), out.size() * 4});
        });
    }

    // ---- building blocks -------------------------------------------------------------------

    std::string gemm(const std::string& x, const std::string& weight,
                     const std::string& bias = {}) {
        std::vector<std::string> in{x, weight};
        if (!bias.empty()) in.push_back(bias);
        return w.node("Gemm", in, {{"transB", int64_t{1}}});
    }

    // RMS norm over the last axis: x / sqrt(mean(x^2) + eps) * weight.
    std::string rms_norm(const std::string& x, const std::string& weight) {
        const std::string sq = w.node("Mul", {x, x});
        const std::string mean = w.node(
            "ReduceMean", {sq}, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", int64_t{1}}});
        const std::string rms = w.node("Sqrt", {w.node("Add", {mean, w.scalar_f32(s.norm_eps)})});
        return w.node("Mul", {w.node("Div", {x, rms}), weight});
    }

    // x += pending (a sublayer's output), then the RMS norm of x. ONNX Runtime's
    // SkipSimplifiedLayerNormalization does both in one pass.
    std::string add_and_norm(std::string& x, std::string& pending, const std::string& weight) {
        if (pending.empty()) return rms_norm(x, weight);
        if (options.ops == OnnxOps::ort) {
            const std::vector<std::string> out =
                w.nodes("SkipSimplifiedLayerNormalization", {pending, x, weight}, 4,
                        {{"epsilon", s.norm_eps}}, "com.microsoft");
            x = out[3];
            pending.clear();
            return out[0];
        }
        x = w.node("Add", {x, pending});
        pending.clear();
        return rms_norm(x, weight);
    }

    std::string softcap(const std::string& x, float cap) {
        const std::string t = w.node("Tanh", {w.node("Mul", {x, w.scalar_f32(1.0f / cap)})});
        return w.node("Mul", {t, w.scalar_f32(cap)});
    }

    std::string activation(const std::string& x) {
        if (s.activation == Activation::silu) return w.node("Mul", {x, w.node("Sigmoid", {x})});
        // gelu, tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        const std::string x3 = w.node("Mul", {w.node("Mul", {x, x}), x});
        const std::string inner =
            w.node("Mul", {w.node("Add", {x, w.node("Mul", {x3, w.scalar_f32(0.044715f)})}),
                           w.scalar_f32(static_cast<float>(std::sqrt(2.0 / M_PI)))});
        const std::string t = w.node("Add", {w.node("Tanh", {inner}), w.scalar_f32(1.0f)});
        return w.node("Mul", {w.node("Mul", {x, t}), w.scalar_f32(0.5f)});
    }

    // Rotates the halves of the first n_rot values of each head of x [batch, seq, heads, dim].
    std::string rope(const std::string& x, int64_t head_dim, bool local) {
        const int64_t half = s.n_rot / 2;
        const std::string& cos = local ? cos_local : cos_global;
        const std::string& sin = local ? sin_local : sin_global;
        const bool rest = head_dim > s.n_rot;
        std::vector<int64_t> sizes{half, half};
        if (rest) sizes.push_back(head_dim - s.n_rot);
        const std::vector<std::string> parts =
            w.nodes("Split", {x, w.constant_i64(sizes, {static_cast<int64_t>(sizes.size())})},
                    static_cast<int>(sizes.size()), {{"axis", int64_t{-1}}});
        const std::string& x1 = parts[0];
        const std::string& x2 = parts[1];
        const std::string r1 = w.node("Sub", {w.node("Mul", {x1, cos}), w.node("Mul", {x2, sin})});
        const std::string r2 = w.node("Add", {w.node("Mul", {x2, cos}), w.node("Mul", {x1, sin})});
        std::vector<std::string> cat{r1, r2};
        if (rest) cat.push_back(parts[2]);
        return w.node("Concat", cat, {{"axis", int64_t{-1}}});
    }

    // A [max_pos, n_rot / 2] table of cos or sin of `rope`, gathered by position_ids into
    // [batch, seq, 1, n_rot / 2].
    std::pair<std::string, std::string> rope_tables(const RopeParams& rope, const char* stem,
                                                    int32_t n_pos) {
        const int32_t half = s.n_rot / 2;
        std::vector<float> cos(static_cast<size_t>(n_pos) * static_cast<size_t>(half));
        std::vector<float> sin(cos.size());
        for (int32_t p = 0; p < n_pos; ++p) {
            for (int32_t i = 0; i < half; ++i) {
                double theta = static_cast<double>(p) * rope.freq_scale *
                               std::pow(static_cast<double>(rope.freq_base),
                                        -2.0 * i / static_cast<double>(s.n_rot));
                if (!rope.factors.empty()) theta /= rope.factors[static_cast<size_t>(i)];
                const size_t at =
                    static_cast<size_t>(p) * static_cast<size_t>(half) + static_cast<size_t>(i);
                cos[at] = static_cast<float>(std::cos(theta) * rope.attn_factor);
                sin[at] = static_cast<float>(std::sin(theta) * rope.attn_factor);
            }
        }
        auto table = [&](const std::vector<float>& v, const std::string& name) {
            const std::string init =
                w.add_initializer(name, OnnxType::float32, {n_pos, half}, [&](const auto& sink) {
                    sink({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
                });
            const std::string g = w.node("Gather", {init, "position_ids"});
            return w.node("Unsqueeze", {g, w.constant_i64({2}, {1})});
        };
        return {table(cos, std::string(stem) + ".cos"), table(sin, std::string(stem) + ".sin")};
    }

    // Additive attention masks: 0 where query i (key index past + i) may see key j, else a
    // large negative; padding from attention_mask. Repeated `group` times along the query axis
    // for the grouped product of attention().
    void masks() {
        const std::string zero = w.scalar_i64(0), one = w.scalar_i64(1);
        const std::string seq = w.node("Gather", {bs_shape, one});
        const std::string total = w.node("Gather", {w.node("Shape", {"attention_mask"}), one});
        const std::string past = w.node("Sub", {total, seq});
        const std::string k_idx = w.node("Range", {zero, total, one});
        const std::string q_idx = w.node("Range", {past, total, one});
        const std::string diff =
            w.node("Sub", {w.node("Unsqueeze", {q_idx, w.constant_i64({1}, {1})}),
                           w.node("Unsqueeze", {k_idx, w.constant_i64({0}, {1})})});
        const std::string causal = w.node("GreaterOrEqual", {diff, zero});
        const std::string padding =
            w.node("Unsqueeze", {w.node("Cast", {"attention_mask"}, {{"to", int64_t{9}}}),
                                 w.constant_i64({1, 2}, {2})});
        const int32_t group = s.n_head / s.n_head_kv;
        auto bias = [&](const std::string& allowed_st) {
            const std::string allowed = w.node("And", {allowed_st, padding});
            return w.node("Where", {allowed, w.scalar_f32(0.0f), w.scalar_f32(-1e30f)});
        };
        auto repeated = [&](const std::string& b) {
            if (group == 1) return b;
            return w.node("Concat", std::vector<std::string>(static_cast<size_t>(group), b),
                          {{"axis", int64_t{2}}});
        };
        if (fused_attention()) {
            // Every row's keys are the whole cache (padding included, masked by the bias), so
            // seqlens_k is total - 1 for each row.
            total_len = w.node("Cast", {total}, {{"to", int64_t{6}}});
            const std::string batch =
                w.node("Unsqueeze", {w.node("Gather", {bs_shape, zero}), w.constant_i64({0}, {1})});
            seqlens_k = w.node(
                "Expand",
                {w.node("Sub", {total_len, w.node("Cast", {one}, {{"to", int64_t{6}}})}), batch});
            bias_global = bias(causal);
        } else {
            mask_global = repeated(bias(causal));
        }
        if (s.sliding_window > 0) {
            const std::string in_window = w.node("Less", {diff, w.scalar_i64(s.sliding_window)});
            const std::string b = bias(w.node("And", {causal, in_window}));
            if (fused_attention())
                bias_local = b;
            else
                mask_local = repeated(b);
        }
    }

    // GroupQueryAttention serves the model: ort ops, and key and value heads of one size.
    bool fused_attention() const {
        return options.ops == OnnxOps::ort && options.fused_attention &&
               s.head_dim_k == s.head_dim_v;
    }

    // ---- the decoder -----------------------------------------------------------------------

    std::string attention(int32_t il, const std::string& h) {
        const std::string p = "blk." + std::to_string(il) + ".";
        const int64_t n_q = int64_t{s.n_head} * s.head_dim_k;
        const int64_t n_k = int64_t{s.n_head_kv} * s.head_dim_k;
        const int64_t n_v = int64_t{s.n_head_kv} * s.head_dim_v;
        // Llama's GGUF rows pair adjacent values; Hugging Face's order rotates halves.
        const int64_t head_rows = s.rope_style == RopeStyle::normal ? s.head_dim_k : 0;
        std::string q, k, v;
        if (s.fused_qkv) {
            const std::string qkv = project(h, p + "attn_qkv.weight", s.n_embd, n_q + n_k + n_v);
            const std::vector<std::string> parts = w.nodes(
                "Split", {qkv, w.constant_i64({n_q, n_k, n_v}, {3})}, 3, {{"axis", int64_t{1}}});
            q = parts[0], k = parts[1], v = parts[2];
        } else {
            const bool bias = s.qkv_bias;
            q = project(h, p + "attn_q.weight", s.n_embd, n_q, head_rows,
                        bias ? vector(p + "attn_q.bias", n_q, head_rows) : "");
            k = project(h, p + "attn_k.weight", s.n_embd, n_k, head_rows,
                        bias ? vector(p + "attn_k.bias", n_k, head_rows) : "");
            v = project(h, p + "attn_v.weight", s.n_embd, n_v, 0,
                        bias ? vector(p + "attn_v.bias", n_v) : "");
        }
        auto heads = [&](const std::string& x, int64_t n, int64_t dim) {
            const std::string shape =
                w.node("Concat", {bs_shape, w.constant_i64({n, dim}, {2})}, {{"axis", int64_t{0}}});
            return w.node("Reshape", {x, shape});
        };
        q = heads(q, s.n_head, s.head_dim_k);
        k = heads(k, s.n_head_kv, s.head_dim_k);
        v = heads(v, s.n_head_kv, s.head_dim_v);
        if (s.qk_norm) {
            q = rms_norm(q, vector(p + "attn_q_norm.weight", s.head_dim_k));
            k = rms_norm(k, vector(p + "attn_k_norm.weight", s.head_dim_k));
        }
        const bool local = s.is_local(il);
        q = rope(q, s.head_dim_k, local);
        k = rope(k, s.head_dim_k, local);
        const std::string index = std::to_string(il);
        if (fused_attention()) {
            // [batch, seq, heads, dim] -> [batch, seq, heads * dim]; the causal mask, windows
            // and padding come in as attention_bias, RoPE is already applied.
            const std::string hidden = w.constant_i64({0, 0, -1}, {3});
            std::vector<OnnxAttr> attrs{{"num_heads", int64_t{s.n_head}},
                                        {"kv_num_heads", int64_t{s.n_head_kv}},
                                        {"scale", s.attn_scale}};
            if (s.attn_softcap > 0) attrs.push_back({"softcap", s.attn_softcap});
            const std::vector<std::string> out =
                w.nodes("GroupQueryAttention",
                        {w.node("Reshape", {q, hidden}), w.node("Reshape", {k, hidden}),
                         w.node("Reshape", {v, hidden}), "past_key_values." + index + ".key",
                         "past_key_values." + index + ".value", seqlens_k, total_len, "", "", "",
                         local && !bias_local.empty() ? bias_local : bias_global},
                        3, attrs, "com.microsoft");
            w.add_output(out[1], "present." + index + ".key", OnnxType::float32,
                         {"batch_size", s.n_head_kv, "total_sequence_length", s.head_dim_k});
            w.add_output(out[2], "present." + index + ".value", OnnxType::float32,
                         {"batch_size", s.n_head_kv, "total_sequence_length", s.head_dim_v});
            const std::string o = w.node(
                "Reshape", {out[0], w.constant_i64({-1, int64_t{s.n_head} * s.head_dim_v}, {2})});
            return project(o, p + "attn_output.weight", int64_t{s.n_head} * s.head_dim_v, s.n_embd);
        }
        const std::vector<int64_t> to_heads{0, 2, 1, 3};
        q = w.node("Transpose", {q}, {{"perm", to_heads}});
        k = w.node("Transpose", {k}, {{"perm", to_heads}});
        v = w.node("Transpose", {v}, {{"perm", to_heads}});
        const std::string present_k =
            w.node("Concat", {"past_key_values." + index + ".key", k}, {{"axis", int64_t{2}}});
        const std::string present_v =
            w.node("Concat", {"past_key_values." + index + ".value", v}, {{"axis", int64_t{2}}});
        const OnnxType kv_type = OnnxType::float32;
        w.add_output(present_k, "present." + index + ".key", kv_type,
                     {"batch_size", s.n_head_kv, "total_sequence_length", s.head_dim_k});
        w.add_output(present_v, "present." + index + ".value", kv_type,
                     {"batch_size", s.n_head_kv, "total_sequence_length", s.head_dim_v});

        // Each KV head serves `group` query heads: the queries of a group are stacked along
        // the sequence axis so that one MatMul per KV head covers them.
        const std::string qg =
            w.node("Reshape", {q, w.constant_i64({0, s.n_head_kv, -1, s.head_dim_k}, {4})});
        const std::string kt =
            w.node("Transpose", {present_k}, {{"perm", std::vector<int64_t>{0, 1, 3, 2}}});
        std::string scores = w.node("MatMul", {qg, kt});
        scores = w.node("Mul", {scores, w.scalar_f32(s.attn_scale)});
        if (s.attn_softcap > 0) scores = softcap(scores, s.attn_softcap);
        scores = w.node("Add", {scores, local && !mask_local.empty() ? mask_local : mask_global});
        const std::string probs = w.node("Softmax", {scores}, {{"axis", int64_t{-1}}});
        std::string out = w.node("MatMul", {probs, present_v});
        out = w.node("Reshape", {out, w.constant_i64({0, s.n_head, -1, s.head_dim_v}, {4})});
        out = w.node("Transpose", {out}, {{"perm", to_heads}});
        out = w.node("Reshape", {out, w.constant_i64({-1, int64_t{s.n_head} * s.head_dim_v}, {2})});
        return project(out, p + "attn_output.weight", int64_t{s.n_head} * s.head_dim_v, s.n_embd);
    }

    std::string feed_forward(int32_t il, const std::string& h) {
        const std::string p = "blk." + std::to_string(il) + ".";
        std::string gate, up;
        if (s.fused_gate_up) {
            const std::string gu = project(h, p + "ffn_up.weight", s.n_embd, 2 * int64_t{s.n_ff});
            const std::vector<std::string> parts = w.nodes(
                "Split", {gu, w.constant_i64({s.n_ff, s.n_ff}, {2})}, 2, {{"axis", int64_t{1}}});
            gate = parts[0], up = parts[1];
        } else {
            gate = project(h, p + "ffn_gate.weight", s.n_embd, s.n_ff);
            up = project(h, p + "ffn_up.weight", s.n_embd, s.n_ff);
        }
        const std::string act = w.node("Mul", {activation(gate), up});
        return project(act, p + "ffn_down.weight", s.n_ff, s.n_embd);
    }

    void build() {
        const int32_t n_pos = options.max_positions > 0 ? options.max_positions : s.n_ctx_train;
        w.add_input("input_ids", OnnxType::int64, {"batch_size", "sequence_length"});
        w.add_input("attention_mask", OnnxType::int64, {"batch_size", "total_sequence_length"});
        w.add_input("position_ids", OnnxType::int64, {"batch_size", "sequence_length"});
        for (int32_t il = 0; il < s.n_layer; ++il) {
            const std::string i = std::to_string(il);
            w.add_input("past_key_values." + i + ".key", OnnxType::float32,
                        {"batch_size", s.n_head_kv, "past_sequence_length", s.head_dim_k});
            w.add_input("past_key_values." + i + ".value", OnnxType::float32,
                        {"batch_size", s.n_head_kv, "past_sequence_length", s.head_dim_v});
        }
        bs_shape = w.node("Shape", {"input_ids"});
        masks();
        std::tie(cos_global, sin_global) = rope_tables(s.rope_global, "rope_global", n_pos);
        if (s.sliding_window > 0 && (s.rope_local.freq_base != s.rope_global.freq_base ||
                                     s.rope_local.freq_scale != s.rope_global.freq_scale ||
                                     s.rope_local.factors != s.rope_global.factors))
            std::tie(cos_local, sin_local) = rope_tables(s.rope_local, "rope_local", n_pos);
        else
            cos_local = cos_global, sin_local = sin_global;

        // The embedding is gathered as float32 (fp32) or float16 rows cast after the Gather.
        const bool embd_half = options.precision != OnnxPrecision::fp32;
        const std::string embd =
            matrix("token_embd.weight", s.n_embd, s.n_vocab, 0, embd_half, true);
        const std::string ids = w.node("Reshape", {"input_ids", w.constant_i64({-1}, {1})});
        std::string x = w.node("Gather", {embd, ids});
        if (embd_half) x = w.node("Cast", {x}, {{"to", int64_t{1}}});
        if (s.embedding_scale != 1.0f) x = w.node("Mul", {x, w.scalar_f32(s.embedding_scale)});

        std::string pending;
        for (int32_t il = 0; il < s.n_layer; ++il) {
            const std::string p = "blk." + std::to_string(il) + ".";
            std::string h = add_and_norm(x, pending, vector(p + "attn_norm.weight", s.n_embd));
            pending = attention(il, h);
            if (s.post_norms)
                pending = rms_norm(pending, vector(p + "post_attention_norm.weight", s.n_embd));
            h = add_and_norm(x, pending, vector(p + "ffn_norm.weight", s.n_embd));
            pending = feed_forward(il, h);
            if (s.post_norms)
                pending = rms_norm(pending, vector(p + "post_ffw_norm.weight", s.n_embd));
        }
        x = add_and_norm(x, pending, vector("output_norm.weight", s.n_embd));
        // The output projection: int8 when the layers are quantized (the usual int4 recipe).
        const std::string out_name = s.tied_output ? "token_embd.weight" : "output.weight";
        std::string logits;
        if (layer_bits() > 0)
            logits = project(x, out_name, s.n_embd, s.n_vocab, 0, {}, 8);
        else if (s.tied_output)
            logits = gemm(x, embd_half ? w.node("Cast", {embd}, {{"to", int64_t{1}}}) : embd);
        else
            logits = project(x, out_name, s.n_embd, s.n_vocab);
        if (s.final_softcap > 0) logits = softcap(logits, s.final_softcap);
        const std::string shape =
            w.node("Concat", {bs_shape, w.constant_i64({s.n_vocab}, {1})}, {{"axis", int64_t{0}}});
        logits = w.node("Reshape", {logits, shape});
        w.add_output(logits, "logits", OnnxType::float32,
                     {"batch_size", "sequence_length", s.n_vocab});
    }
};

int64_t token_id(const GgufFile& file, const char* key, int64_t fallback) {
    const std::optional<uint64_t> v = file.get_uint(key);
    return v ? static_cast<int64_t>(*v) : fallback;
}

// onnxruntime-genai's configuration for the exported decoder.
void write_genai_config(const GgufFile& file, const ModelSpec& s, const std::string& path) {
    using nlohmann::json;
    static const std::map<std::string, std::string> genai_type = {
        {"llama", "llama"},   {"qwen2", "qwen2"},        {"qwen3", "qwen3"},
        {"gemma2", "gemma2"}, {"gemma3", "gemma3_text"}, {"phi3", "phi3"}};
    const auto type = genai_type.find(s.arch);
    const int64_t eos = token_id(file, "tokenizer.ggml.eos_token_id", 0);
    json decoder = {
        {"session_options", {{"log_id", "onnxruntime-genai"}, {"provider_options", json::array()}}},
        {"filename", "model.onnx"},
        {"head_size", s.head_dim_k},
        {"hidden_size", s.n_embd},
        {"inputs",
         {{"input_ids", "input_ids"},
          {"attention_mask", "attention_mask"},
          {"position_ids", "position_ids"},
          {"past_key_names", "past_key_values.%d.key"},
          {"past_value_names", "past_key_values.%d.value"}}},
        {"outputs",
         {{"logits", "logits"},
          {"present_key_names", "present.%d.key"},
          {"present_value_names", "present.%d.value"}}},
        {"num_attention_heads", s.n_head},
        {"num_hidden_layers", s.n_layer},
        {"num_key_value_heads", s.n_head_kv},
    };
    json config = {
        {"model",
         {{"bos_token_id", token_id(file, "tokenizer.ggml.bos_token_id", 0)},
          {"context_length", s.n_ctx_train},
          {"decoder", decoder},
          {"eos_token_id", eos},
          {"pad_token_id", token_id(file, "tokenizer.ggml.padding_token_id", eos)},
          {"type", type == genai_type.end() ? s.arch : type->second},
          {"vocab_size", s.n_vocab}}},
        {"search",
         {{"do_sample", false},
          {"early_stopping", true},
          {"length_penalty", 1.0},
          {"max_length", s.n_ctx_train},
          {"min_length", 0},
          {"no_repeat_ngram_size", 0},
          {"num_beams", 1},
          {"num_return_sequences", 1},
          {"past_present_share_buffer", false},
          {"repetition_penalty", 1.0},
          {"temperature", 1.0},
          {"top_k", 1},
          {"top_p", 1.0}}},
    };
    std::ofstream out(path);
    out << config.dump(4) << "\n";
    if (!out) fail("{}: cannot write", path);
}

}  // namespace

OnnxExportReport export_onnx(const GgufFile& file, const std::string& dir,
                             const OnnxExportOptions& options, ThreadPool& pool) {
    const ModelSpec spec = model_spec_from_gguf(file);
    if (spec.rope_style == RopeStyle::normal && spec.n_rot != spec.head_dim_k)
        fail("{}: a Llama-style RoPE over {} of {} head dimensions cannot be exported", file.path(),
             spec.n_rot, spec.head_dim_k);
    // LongRoPE (Phi-3 128k): the tables hold the short factors, as the runtime uses them for
    // contexts up to the original training length.
    const std::string onnx_path = (std::filesystem::path(dir) / "model.onnx").string();
    OnnxWriterOptions writer_options;
    writer_options.opset = 17;
    if (options.ops == OnnxOps::ort) writer_options.ms_opset = 1;
    OnnxWriter writer(onnx_path, writer_options);
    Exporter e{file, spec, options, pool, writer, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    e.build();
    writer.finish();
    write_genai_config(file, spec, (std::filesystem::path(dir) / "genai_config.json").string());
    e.report.data_bytes = writer.data_bytes();
    e.report.model_bytes = std::filesystem::file_size(onnx_path);
    return e.report;
}

}  // namespace edgeq
