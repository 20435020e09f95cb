// Packed weights (src/runtime/cpu/packed.h) against the row kernels: the scalar reference run
// on the packed layout gives the row reference's bits; the x86 runs and the matmul on packed
// weights (generation, a few rows, and the GEMM decoding its panels from the packed copy)
// match it within float rounding; the panels decoded from the packed copy are the bytes the
// GEMM decodes from the rows.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/core/half.h"
#include "kernel-test-util.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/packed.h"

namespace edgeq::cpu {
namespace {

using kernel_test::activation_values;
using kernel_test::random_weights;

std::vector<GgmlType> packed_types() {
    std::vector<GgmlType> types;
    for (GgmlType t : kernel_test::weight_types())
        if (packed_reference(t) != nullptr) types.push_back(t);
    return types;
}

const KernelTable* table_of(Isa isa) {
    return isa == Isa::avx2 ? avx2_kernels() : isa == Isa::avx512 ? avx512_kernels() : nullptr;
}

class PackedTest : public ::testing::TestWithParam<GgmlType> {
  protected:
    testing::Random random_;
};

// The groups of rows [0, n_out) packed by the reference's layout functions.
std::vector<uint8_t> pack_all(const PackedKernel& p, const std::vector<uint8_t>& w, GgmlType type,
                              int64_t n_out, int64_t k) {
    const size_t gb = p.group_bytes(k);
    const int64_t n_groups = (n_out + k_pack_rows - 1) / k_pack_rows;
    std::vector<uint8_t> out(gb * static_cast<size_t>(n_groups) + gb);  // one spare group
    for (int64_t g = 0; g < n_groups; ++g) {
        const int n_rows = static_cast<int>(std::min<int64_t>(k_pack_rows, n_out - g * 8));
        p.pack(w.data() + static_cast<size_t>(g * 8) * row_size(type, k), row_size(type, k), n_rows,
               k, out.data() + static_cast<size_t>(g) * gb);
    }
    return out;
}

TEST_P(PackedTest, ReferenceRunGivesTheRowReferenceBits) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const PackedKernel& ref = *packed_reference(type);
    const int64_t bs = dtype(type).block_size;
    const GgmlType act = activation_type(type);
    for (int64_t n_out : {1, 5, 8, 13}) {
        for (int64_t n_blocks : {1, 3}) {
            const int64_t k = n_blocks * bs;
            const std::vector<uint8_t> w = random_weights(random_, type, n_out, k);
            const std::vector<uint8_t> packed = pack_all(ref, w, type, n_out, k);
            const int n_acts = 3;
            const size_t a_row = activation_row_size(act, k);
            std::vector<uint8_t> a(a_row * n_acts);
            const std::vector<float> x = random_.normal(static_cast<size_t>(n_acts * k), 2.0f);
            for (int c = 0; c < n_acts; ++c)
                quantize_activations(act, x.data() + c * k, a.data() + c * a_row, k);
            for (int64_t g = 0; g * 8 < n_out; ++g) {
                const int n_rows = static_cast<int>(std::min<int64_t>(8, n_out - g * 8));
                std::vector<float> out(static_cast<size_t>(n_acts * 8), NAN);
                ref.run(k, packed.data() + static_cast<size_t>(g) * ref.group_bytes(k), a.data(),
                        a_row, n_acts, out.data(), 8, n_rows);
                for (int c = 0; c < n_acts; ++c) {
                    for (int r = 0; r < n_rows; ++r) {
                        float want = NAN;
                        vec_dot(type, Isa::scalar)(
                            k, &want, w.data() + static_cast<size_t>(g * 8 + r) * row_size(type, k),
                            a.data() + c * a_row);
                        EXPECT_EQ(out[static_cast<size_t>(c * 8 + r)], want)
                            << "n_out=" << n_out << " k=" << k << " row " << g * 8 + r;
                    }
                    for (int r = n_rows; r < 8; ++r)
                        EXPECT_TRUE(std::isnan(out[static_cast<size_t>(c * 8 + r)]))
                            << "wrote past n_rows";
                }
            }
        }
    }
}

TEST_P(PackedTest, PanelsDecodedFromThePackedCopyAreTheGemmPanels) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const PackedKernel& ref = *packed_reference(type);
    if (ref.decode_panel == nullptr) GTEST_SKIP() << "no GEMM panels for " << dtype(type).name;
    int n_isas = 0;
    for (Isa isa : kernel_test::cpu_isas()) {
        const KernelTable* t = table_of(isa);
        if (t == nullptr || t->gemm[type_index(type)] == nullptr) continue;
        ++n_isas;
        const GemmKernel& gemm = *t->gemm[type_index(type)];
        for (int64_t n_rows : {16, 11, 8, 3}) {
            const int64_t k = 3 * dtype(type).block_size;
            const std::vector<uint8_t> w = random_weights(random_, type, n_rows, k);
            const std::vector<uint8_t> packed = pack_all(ref, w, type, n_rows, k);
            const size_t bytes = gemm_panel_bytes(k, gemm.sub_block);
            std::vector<uint8_t> want_buf, got_buf;
            uint8_t* want = aligned_scratch(want_buf, bytes);
            uint8_t* got = aligned_scratch(got_buf, bytes);
            std::memset(want, 0xa5, bytes);
            std::memset(got, 0x5a, bytes);
            gemm.decode(w.data(), row_size(type, k), static_cast<int>(n_rows), k, want);
            ref.decode_panel(packed.data(), static_cast<int>(n_rows), k, got);
            // The minimum floats exist only for types with minimums.
            const size_t used =
                gemm.has_min ? bytes : bytes - static_cast<size_t>(k / gemm.sub_block) * 16 * 4;
            EXPECT_EQ(std::memcmp(want, got, used), 0)
                << dtype(type).name << " " << isa_name(isa) << " rows " << n_rows;
            // An ISA's own decoder of the packed copy, where it has one, gives the same bytes.
            const PackedKernel* own = t->packed[type_index(type)];
            if (own != nullptr && own->decode_panel != nullptr &&
                own->decode_panel != ref.decode_panel) {
                std::memset(got, 0x5a, bytes);
                own->decode_panel(packed.data(), static_cast<int>(n_rows), k, got);
                EXPECT_EQ(std::memcmp(want, got, used), 0)
                    << dtype(type).name << " " << isa_name(isa) << "'s decoder, rows " << n_rows;
            }
        }
    }
    if (n_isas == 0) GTEST_SKIP() << "no GEMM for " << dtype(type).name << " on this CPU";
}

TEST_P(PackedTest, MatmulOnPackedWeightsMatchesTheRowReference) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const int64_t bs = dtype(type).block_size;
    const GgmlType act = activation_type(type);
    ThreadPool one(1);
    ThreadPool three(3);
    MatmulScratch scratch;
    int n_isas = 0;
    for (Isa isa : kernel_test::cpu_isas()) {
        if (table_of(isa) == nullptr || table_of(isa)->packed[type_index(type)] == nullptr)
            continue;
        ++n_isas;
        for (int64_t m : {1, 2, 3, 4, 5, 9, 17, 40}) {
            for (int64_t n_out : {1, 7, 8, 9, 33, 50}) {
                for (int64_t n_blocks : {1, 3, 11}) {
                    const int64_t k = n_blocks * bs;
                    const std::vector<uint8_t> w = random_weights(random_, type, n_out, k);
                    const auto packed = pack_weights(type, w.data(), n_out, k, three, isa);
                    ASSERT_NE(packed, nullptr);
                    std::vector<float> wf(static_cast<size_t>(n_out * k));
                    to_float(type, w.data(), wf.data(), n_out * k);
                    std::vector<float> x = random_.normal(static_cast<size_t>(m * k), 2.0f);
                    x[static_cast<size_t>(random_.uniform_int(0, static_cast<int>(m * k) - 1))] *=
                        40;
                    std::vector<float> y1(static_cast<size_t>(m * n_out), NAN);
                    std::vector<float> y3(static_cast<size_t>(m * n_out), NAN);
                    matmul(*packed, x.data(), m, y1.data(), one, scratch);
                    matmul(*packed, x.data(), m, y3.data(), three, scratch);
                    EXPECT_EQ(y1, y3) << "results depend on the thread count";
                    std::vector<uint8_t> a(activation_row_size(act, k));
                    for (int64_t i = 0; i < m; ++i) {
                        quantize_activations(act, x.data() + i * k, a.data(), k);
                        const std::vector<double> av = activation_values(act, a.data(), k);
                        for (int64_t r = 0; r < n_out; ++r) {
                            float want = NAN;
                            vec_dot(type, Isa::scalar)(
                                k, &want, w.data() + static_cast<size_t>(r) * row_size(type, k),
                                a.data());
                            const std::vector<float> row(wf.begin() + r * k,
                                                         wf.begin() + (r + 1) * k);
                            const double magnitude =
                                kernel_test::rounding_scale(row, av.data(), bs);
                            const double n_terms = static_cast<double>(k / 16);
                            const double tol = 4 * (n_terms + 16) * FLT_EPSILON * magnitude + 1e-30;
                            EXPECT_NEAR(y1[static_cast<size_t>(i * n_out + r)], want, tol)
                                << dtype(type).name << " " << isa_name(isa) << " m=" << m
                                << " n_out=" << n_out << " k=" << k << " (" << i << ", " << r
                                << ")";
                        }
                    }
                }
            }
        }
    }
    if (n_isas == 0) GTEST_SKIP() << "no packed kernel for " << dtype(type).name << " here";
}

// One activation row's result is the same whether it runs alone or with others.
TEST_P(PackedTest, ResultsDoNotDependOnTheNumberOfActivationRows) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const int64_t k = 5 * dtype(type).block_size;
    const GgmlType act = activation_type(type);
    const size_t a_row = activation_row_size(act, k);
    for (Isa isa : kernel_test::cpu_isas()) {
        const KernelTable* t = table_of(isa);
        if (t == nullptr || t->packed[type_index(type)] == nullptr) continue;
        const PackedKernel& p = *t->packed[type_index(type)];
        const std::vector<uint8_t> w = random_weights(random_, type, 8, k);
        const std::vector<uint8_t> packed = pack_all(p, w, type, 8, k);
        std::vector<uint8_t> a(a_row * k_max_acts);
        const std::vector<float> x = random_.normal(static_cast<size_t>(k_max_acts * k), 1.0f);
        for (int c = 0; c < k_max_acts; ++c)
            quantize_activations(act, x.data() + c * k, a.data() + c * a_row, k);
        std::vector<float> all(8 * k_max_acts);
        p.run(k, packed.data(), a.data(), a_row, k_max_acts, all.data(), 8, 8);
        for (int c = 0; c < k_max_acts; ++c) {
            std::vector<float> one(8);
            p.run(k, packed.data(), a.data() + c * a_row, a_row, 1, one.data(), 8, 8);
            for (int r = 0; r < 8; ++r)
                EXPECT_EQ(one[static_cast<size_t>(r)], all[static_cast<size_t>(c * 8 + r)])
                    << isa_name(isa) << " activation row " << c << " weight row " << r;
        }
    }
}

// The k-quants with minimums at their extremes: every quant and six-bit scale and minimum at
// its largest, activations all of one sign at full scale, where int16 partial sums (AVX2's
// vpmaddubsw) come closest to saturating.
TEST_P(PackedTest, KQuantsAtTheirExtremesMatchTheRowReference) {
    const GgmlType type = GetParam();
    if (type != GgmlType::Q4_K && type != GgmlType::Q5_K) GTEST_SKIP() << "not a k-quant";
    const int64_t k = 2 * 256;
    const size_t w_row = row_size(type, k);
    const GgmlType act = activation_type(type);
    const size_t a_row = activation_row_size(act, k);
    for (const int n_rows : {8, 5}) {
        // All bits set but d and dmin (the first two FP16 of both block layouts).
        std::vector<uint8_t> w(w_row * 8, 0xff);
        for (int r = 0; r < n_rows; ++r) {
            for (int64_t b = 0; b < k / 256; ++b) {
                uint8_t* blk = w.data() + static_cast<size_t>(r) * w_row +
                               static_cast<size_t>(b) * dtype(type).type_size;
                const uint16_t d = fp32_to_fp16(0.25f + 0.5f * static_cast<float>(r + b));
                const uint16_t dmin = fp32_to_fp16(0.125f * static_cast<float>(r + 1));
                std::memcpy(blk, &d, 2);
                std::memcpy(blk + 2, &dmin, 2);
            }
        }
        for (const float sign : {1.0f, -1.0f}) {
            std::vector<float> x(static_cast<size_t>(k), sign);
            std::vector<uint8_t> a(a_row);
            quantize_activations(act, x.data(), a.data(), k);
            for (Isa isa : kernel_test::cpu_isas()) {
                const KernelTable* t = table_of(isa);
                if (t == nullptr || t->packed[type_index(type)] == nullptr) continue;
                const PackedKernel& p = *t->packed[type_index(type)];
                const std::vector<uint8_t> packed = pack_all(p, w, type, n_rows, k);
                std::vector<float> out(8, NAN);
                p.run(k, packed.data(), a.data(), a_row, 1, out.data(), 8, n_rows);
                for (int r = 0; r < n_rows; ++r) {
                    float want = NAN;
                    vec_dot(type, Isa::scalar)(k, &want, w.data() + static_cast<size_t>(r) * w_row,
                                               a.data());
                    EXPECT_NEAR(out[static_cast<size_t>(r)], want, 1e-5 * std::fabs(want))
                        << isa_name(isa) << " sign " << sign << " row " << r;
                }
            }
        }
    }
}

// Q6_K at its extremes, which quantized weights rarely reach: every value 0 or 63, scales
// -128 and 127, activations all +-127 (the AVX2 run adds two pair sums of u * a in int16, at
// most 4 * 63 * 127), and blocks of random bytes.
TEST(PackedQ6_KTest, ExtremeBlocksMatchTheRowReference) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const GgmlType type = GgmlType::Q6_K;
    const int64_t n_blocks = 3, k = 256 * n_blocks;
    std::vector<quant::BlockQ6_K> w(static_cast<size_t>(8 * n_blocks));
    for (int r = 0; r < 8; ++r) {
        for (int64_t b = 0; b < n_blocks; ++b) {
            quant::BlockQ6_K& x = w[static_cast<size_t>(r * n_blocks + b)];
            const uint8_t fill = r < 2 ? 0xff : 0;  // all 63 or all 0
            for (auto& q : x.ql)
                q = r < 4 ? fill : static_cast<uint8_t>(random.uniform_int(0, 255));
            for (auto& q : x.qh)
                q = r < 4 ? fill : static_cast<uint8_t>(random.uniform_int(0, 255));
            for (auto& sc : x.scales) {
                sc = static_cast<int8_t>(r < 4 ? (r % 2 == 0 ? 127 : -128)
                                               : random.uniform_int(-128, 127));
            }
            x.d = fp32_to_fp16(random.uniform(0.5f, 2.0f) * (random.uniform_int(0, 1) ? 1 : -1));
        }
    }
    std::vector<quant::BlockQ8_K> a(static_cast<size_t>(k_max_acts * n_blocks));
    for (int c = 0; c < k_max_acts; ++c) {
        for (int64_t b = 0; b < n_blocks; ++b) {
            quant::BlockQ8_K& y = a[static_cast<size_t>(c * n_blocks + b)];
            y.d = random.uniform(0.5f, 2.0f);
            for (int j = 0; j < 256; ++j) {
                const int q = c == 0   ? 127
                              : c == 1 ? -127
                              : c == 2 ? (random.uniform_int(0, 1) ? 127 : -127)
                                       : random.uniform_int(-127, 127);
                y.qs[j] = static_cast<int8_t>(q);
            }
            for (int g = 0; g < 16; ++g) {
                int sum = 0;
                for (int j = 0; j < 16; ++j) sum += y.qs[16 * g + j];
                y.bsums[g] = static_cast<int16_t>(sum);
            }
        }
    }
    const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
    const auto* ab = reinterpret_cast<const uint8_t*>(a.data());
    const size_t w_row = row_size(type, k), a_row = n_blocks * sizeof(quant::BlockQ8_K);
    const std::vector<uint8_t> packed =
        pack_all(*packed_reference(type), std::vector<uint8_t>(wb, wb + 8 * w_row), type, 8, k);
    std::vector<float> wf(static_cast<size_t>(8 * k));
    to_float(type, wb, wf.data(), 8 * k);
    for (Isa isa : kernel_test::cpu_isas()) {
        const PackedKernel* p =
            isa == Isa::scalar ? packed_reference(type) : table_of(isa)->packed[type_index(type)];
        if (p == nullptr) continue;
        std::vector<float> out(8 * k_max_acts, NAN);
        p->run(k, packed.data(), ab, a_row, k_max_acts, out.data(), 8, 8);
        for (int c = 0; c < k_max_acts; ++c) {
            const std::vector<double> av =
                activation_values(GgmlType::Q8_K, ab + static_cast<size_t>(c) * a_row, k);
            for (int r = 0; r < 8; ++r) {
                float want = NAN;
                vec_dot(type, Isa::scalar)(k, &want, wb + r * w_row, ab + c * a_row);
                const float got = out[static_cast<size_t>(c * 8 + r)];
                if (isa == Isa::scalar) {
                    EXPECT_EQ(got, want) << "activation row " << c << " weight row " << r;
                    continue;
                }
                double magnitude = 0;
                for (int64_t j = 0; j < k; ++j)
                    magnitude += std::fabs(wf[static_cast<size_t>(r * k + j)] * av[j]);
                const double tol = 4 * (n_blocks + 2) * FLT_EPSILON * magnitude;
                EXPECT_NEAR(got, want, tol)
                    << isa_name(isa) << " activation row " << c << " weight row " << r;
            }
        }
    }
}

// Products sharing one input in one job: each output is the separate matmul's, bit for bit,
// across types of one activation format, odd row counts, every activation row count below
// the GEMM, and thread counts.
TEST(PackedWeightsTest, SharedInputProductsEqualSeparateOnes) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    ThreadPool pool(3);
    MatmulScratch scratch;
    for (Isa isa : kernel_test::cpu_isas()) {
        if (table_of(isa) == nullptr) continue;
        for (const auto& types :
             {std::vector<GgmlType>{GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q4_K},
              std::vector<GgmlType>{GgmlType::Q4_0, GgmlType::Q8_0}}) {
            const int64_t k = 512;
            const std::vector<int64_t> n_outs = {37, 8, 61};
            std::vector<std::vector<uint8_t>> rows;
            std::vector<std::unique_ptr<PackedWeights>> packed;
            for (size_t i = 0; i < types.size(); ++i) {
                rows.push_back(random_weights(random, types[i], n_outs[i], k));
                packed.push_back(
                    pack_weights(types[i], rows.back().data(), n_outs[i], k, pool, isa));
                ASSERT_NE(packed.back(), nullptr);
            }
            int64_t max_m = 1;
            for (int64_t m = 2; m <= 40; ++m) {
                bool gemm = false;
                for (const auto& w : packed) gemm = gemm || uses_gemm(*w, m);
                if (gemm) break;
                max_m = m;
            }
            for (int64_t m = 1; m <= max_m; ++m) {
                const std::vector<float> x = random.normal(static_cast<size_t>(m * k), 2.0f);
                std::vector<std::vector<float>> shared(types.size()), alone(types.size());
                std::vector<PackedProduct> products;
                for (size_t i = 0; i < types.size(); ++i) {
                    shared[i].assign(static_cast<size_t>(m * n_outs[i]), NAN);
                    alone[i].assign(static_cast<size_t>(m * n_outs[i]), NAN);
                    products.push_back({packed[i].get(), shared[i].data()});
                    matmul(*packed[i], x.data(), m, alone[i].data(), pool, scratch);
                }
                matmul_shared(products.data(), static_cast<int>(products.size()), x.data(), m, pool,
                              scratch);
                for (size_t i = 0; i < types.size(); ++i)
                    EXPECT_EQ(shared[i], alone[i])
                        << isa_name(isa) << " product " << i << " m " << m;
            }
            // Rows enough for a product's GEMM are refused (that product is not a run).
            if (max_m < 40) {
                std::vector<float> x(static_cast<size_t>((max_m + 1) * k), 1.0f);
                std::vector<float> y(static_cast<size_t>((max_m + 1) * 61));
                std::vector<PackedProduct> products;
                for (const auto& w : packed) products.push_back({w.get(), y.data()});
                EXPECT_THROW(matmul_shared(products.data(), static_cast<int>(products.size()),
                                           x.data(), max_m + 1, pool, scratch),
                             Error);
            }
        }
        // Products that do not share k or the activation format are refused.
        const std::vector<uint8_t> a = random_weights(random, GgmlType::Q4_K, 8, 256);
        const std::vector<uint8_t> b = random_weights(random, GgmlType::Q4_K, 8, 512);
        const std::vector<uint8_t> c = random_weights(random, GgmlType::Q8_0, 8, 256);
        const auto pa = pack_weights(GgmlType::Q4_K, a.data(), 8, 256, pool, isa);
        const auto pb = pack_weights(GgmlType::Q4_K, b.data(), 8, 512, pool, isa);
        const auto pc = pack_weights(GgmlType::Q8_0, c.data(), 8, 256, pool, isa);
        std::vector<float> x(512, 1.0f), y1(8), y2(8);
        const PackedProduct ab[] = {{pa.get(), y1.data()}, {pb.get(), y2.data()}};
        const PackedProduct ac[] = {{pa.get(), y1.data()}, {pc.get(), y2.data()}};
        EXPECT_THROW(matmul_shared(ab, 2, x.data(), 1, pool, scratch), Error);
        EXPECT_THROW(matmul_shared(ac, 2, x.data(), 1, pool, scratch), Error);
    }
}

TEST(PackedWeightsTest, ScalarIsaAndTypesWithoutALayoutKeepTheirRows) {
    ThreadPool pool(1);
    std::vector<uint8_t> w(row_size(GgmlType::Q4_0, 64) * 3, 0x11);
    EXPECT_EQ(pack_weights(GgmlType::Q4_0, w.data(), 3, 64, pool, Isa::scalar), nullptr);
    std::vector<float> f(64 * 3, 0.5f);
    EXPECT_EQ(pack_weights(GgmlType::F32, f.data(), 3, 64, pool), nullptr);
}

// Q8_0 quants span [-128, 127] in a GGUF file, though edgeq's quantizer writes [-127, 127]:
// pairs of -128 weights times -127 activations (2 * 16256, the most an int16 pair sum can take
// on AVX2) and every other extreme give the exact integer dot product on every ISA.
TEST(PackedWeightsTest, Q8_0ExtremeQuantsGiveExactSums) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const int64_t n_blocks = 4;
    const int64_t k = 32 * n_blocks;
    const int8_t extremes[] = {-128, -127, 127, 0, 1, -1};
    std::vector<quant::BlockQ8_0> w(static_cast<size_t>(k_pack_rows * n_blocks));
    std::vector<ActBlockQ8> a(static_cast<size_t>(n_blocks));
    for (int64_t b = 0; b < n_blocks; ++b) {
        a[static_cast<size_t>(b)].d = 1;
        a[static_cast<size_t>(b)].sum = 0;
        for (int j = 0; j < 32; ++j) {
            const int8_t q = b == 0 ? -127 : b == 1 ? 127 : random.uniform_int(0, 1) ? 127 : -127;
            a[static_cast<size_t>(b)].qs[j] = q;
            a[static_cast<size_t>(b)].sum += q;
        }
        for (int r = 0; r < k_pack_rows; ++r) {
            quant::BlockQ8_0& x = w[static_cast<size_t>(r * n_blocks + b)];
            x.d = fp32_to_fp16(1.0f);
            for (int j = 0; j < 32; ++j)
                x.qs[j] = b == 0 ? -128 : b == 1 ? 127 : extremes[random.uniform_int(0, 5)];
        }
    }
    std::vector<float> want(k_pack_rows);
    for (int r = 0; r < k_pack_rows; ++r) {
        int64_t dot = 0;
        for (int64_t j = 0; j < k; ++j)
            dot += w[static_cast<size_t>(r * n_blocks + j / 32)].qs[j % 32] *
                   a[static_cast<size_t>(j / 32)].qs[j % 32];
        want[static_cast<size_t>(r)] = static_cast<float>(dot);
    }
    const size_t w_row = row_size(GgmlType::Q8_0, k);
    for (Isa isa : kernel_test::cpu_isas()) {
        const KernelTable* t = isa == Isa::scalar ? nullptr : table_of(isa);
        const PackedKernel* p =
            t == nullptr ? &packed_q8_0_reference() : t->packed[type_index(GgmlType::Q8_0)];
        if (p == nullptr) continue;
        std::vector<uint8_t> packed(p->group_bytes(k));
        p->pack(reinterpret_cast<const uint8_t*>(w.data()), w_row, k_pack_rows, k, packed.data());
        for (int n_acts : {1, 4}) {
            std::vector<uint8_t> acts(a.size() * sizeof(ActBlockQ8) * static_cast<size_t>(n_acts));
            for (int c = 0; c < n_acts; ++c)
                std::memcpy(acts.data() + c * a.size() * sizeof(ActBlockQ8), a.data(),
                            a.size() * sizeof(ActBlockQ8));
            std::vector<float> out(static_cast<size_t>(k_pack_rows * n_acts));
            p->run(k, packed.data(), acts.data(), a.size() * sizeof(ActBlockQ8), n_acts, out.data(),
                   k_pack_rows, k_pack_rows);
            for (int c = 0; c < n_acts; ++c)
                for (int r = 0; r < k_pack_rows; ++r)
                    EXPECT_EQ(out[static_cast<size_t>(c * k_pack_rows + r)],
                              want[static_cast<size_t>(r)])
                        << isa_name(isa) << " acts " << n_acts << " row " << r;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(PackedTypes, PackedTest, ::testing::ValuesIn(packed_types()),
                         kernel_test::type_name);

}  // namespace
}  // namespace edgeq::cpu
