// quantize_rows (edgeq/quant/quantize.h): what it refuses (rows that are not whole blocks,
// types without a quantizer, NaN and infinity, naming the tensor and the row) and that it gives
// the bytes of quantizing each row by itself on any number of threads.
#include "edgeq/quant/quantize.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/quant/dtype.h"
#include "quant/quantize-test-util.h"
#include "test-random.h"

namespace edgeq::quant_test {
namespace {

std::string error_message(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(QuantizeRows, RefusesRowsThatAreNotWholeBlocks) {
    for (const DType* t : quantizable_types()) {
        if (t->block_size == 1) continue;
        for (int64_t n :
             {t->block_size - 1, t->block_size + 1, 3 * t->block_size / 2, int64_t{11008} + 16}) {
            if (n % t->block_size == 0) continue;
            std::vector<float> x(static_cast<size_t>(2 * n), 0.5f);
            std::vector<uint8_t> dst(static_cast<size_t>(8 * n) + 1024);
            const std::string message = error_message([&] {
                quantize_rows(t->type, x.data(), dst.data(), 2, n, nullptr, nullptr, "blk.0.w");
            });
            ASSERT_FALSE(message.empty()) << t->name << " accepted rows of " << n;
            EXPECT_NE(message.find(std::string(t->name)), std::string::npos) << message;
            EXPECT_NE(message.find(std::to_string(t->block_size)), std::string::npos) << message;
            EXPECT_NE(message.find("blk.0.w"), std::string::npos) << message;
        }
    }
}

TEST(QuantizeRows, RefusesTypesWithoutAQuantizer) {
    std::vector<float> x(256, 1.0f);
    std::vector<uint8_t> dst(4096);
    for (GgmlType type : {GgmlType::IQ2_XXS, GgmlType::Q8_1, GgmlType::MXFP4, GgmlType::I32}) {
        const std::string message = error_message(
            [&] { quantize_rows(type, x.data(), dst.data(), 1, 256, nullptr, nullptr, "t"); });
        EXPECT_NE(message.find(std::string(dtype(type).name)), std::string::npos)
            << "'" << message << "'";
        EXPECT_FALSE(can_quantize(type));
    }
    EXPECT_TRUE(can_quantize(GgmlType::Q4_K));
}

// NaN, infinities and (for F16 and the block formats, whose scales and minimums are F16)
// values beyond F16's range are refused, naming the tensor and the row.
TEST(QuantizeRows, RefusesNaNAndInfinityNamingTheRow) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    ThreadPool pool(3);
    for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::F16, GgmlType::TQ2_0}) {
        for (float bad :
             {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
              -std::numeric_limits<float>::infinity(), 70000.0f, -65520.0f}) {
            for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
                const int64_t n_rows = 40;
                const int64_t n = 4096;
                std::vector<float> x = random.normal(static_cast<size_t>(n_rows * n));
                const int64_t row = random.uniform_int(0, static_cast<int>(n_rows) - 1);
                const int64_t column = random.uniform_int(0, static_cast<int>(n) - 1);
                x[static_cast<size_t>(row * n + column)] = bad;
                std::vector<uint8_t> dst(row_size(type, n) * static_cast<size_t>(n_rows));
                const std::string message = error_message([&] {
                    quantize_rows(type, x.data(), dst.data(), n_rows, n, nullptr, p,
                                  "blk.7.ffn_up.weight");
                });
                ASSERT_FALSE(message.empty()) << dtype(type).name << " accepted " << bad;
                EXPECT_NE(message.find("blk.7.ffn_up.weight"), std::string::npos) << message;
                EXPECT_NE(message.find("row " + std::to_string(row)), std::string::npos) << message;
            }
        }
    }
    // BF16 and F32 hold large values.
    for (GgmlType type : {GgmlType::BF16, GgmlType::F32}) {
        std::vector<float> x(256, 70000.0f);
        std::vector<uint8_t> dst(row_size(type, 256));
        EXPECT_NO_THROW(quantize_rows(type, x.data(), dst.data(), 1, 256, nullptr, nullptr));
    }
}

// Rows spread over 1, 2 and 5 threads give the bytes of quantizing each row by itself.
TEST(QuantizeRows, SameBytesOnAnyThreadCount) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    struct Case {
        GgmlType type;
        bool with_importance;
    };
    // Rows of 16384 values make chunks of 4 rows (quantize_rows aims at 64k values a chunk),
    // so 13 rows make 4 chunks of unequal length.
    constexpr int64_t n_rows = 13;
    constexpr int64_t n = 16384;
    const std::vector<float> x = random.normal(static_cast<size_t>(n_rows * n));
    const std::vector<float> w = random.importance(static_cast<size_t>(n));
    ThreadPool pools[] = {ThreadPool(1), ThreadPool(2), ThreadPool(5)};
    for (const Case& c :
         {Case{GgmlType::Q4_0, true}, Case{GgmlType::Q8_0, false}, Case{GgmlType::Q4_K, true},
          Case{GgmlType::Q6_K, false}, Case{GgmlType::IQ4_NL, false}, Case{GgmlType::TQ1_0, true},
          Case{GgmlType::BF16, false}}) {
        const DType& t = dtype(c.type);
        const float* importance = c.with_importance ? w.data() : nullptr;
        const size_t row_bytes = row_size(c.type, n);
        std::vector<uint8_t> expected(row_bytes * n_rows);
        for (int64_t r = 0; r < n_rows; ++r) {
            t.quantize_row(x.data() + r * n, expected.data() + static_cast<size_t>(r) * row_bytes,
                           n, importance);
        }
        std::vector<uint8_t> serial(expected.size());
        quantize_rows(c.type, x.data(), serial.data(), n_rows, n, importance, nullptr);
        EXPECT_EQ(serial, expected) << t.name << " without a pool";
        for (ThreadPool& pool : pools) {
            std::vector<uint8_t> got(expected.size() + 8, 0x77);
            quantize_rows(c.type, x.data(), got.data(), n_rows, n, importance, &pool);
            for (size_t i = expected.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 0x77);
            got.resize(expected.size());
            EXPECT_EQ(got, expected) << t.name << " on " << pool.size() << " threads";
        }
    }
}

TEST(QuantizeRows, NoRowsIsNothing) {
    std::vector<uint8_t> dst(4, 0x11);
    quantize_rows(GgmlType::Q4_K, nullptr, dst.data(), 0, 256, nullptr, nullptr);
    EXPECT_EQ(dst, std::vector<uint8_t>(4, 0x11));
}

}  // namespace
}  // namespace edgeq::quant_test
