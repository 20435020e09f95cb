// The base logits file: every position's encoding against a log-softmax computed here in long
// double; a written file reads back; truncated, damaged or foreign files are Errors.
#include "edgeq/eval/logits-file.h"
#include "test-errors.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "test-random.h"

namespace edgeq {
namespace {

using testing::expect_error;

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            ("edgeq-logits-test-" + std::to_string(::getpid()) + "-" + name))
        .string();
}

std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Rows {
    uint32_t n_vocab;
    std::vector<float> logits;  // n_rows x n_vocab
    std::vector<int32_t> targets;
};

Rows random_rows(testing::Random& random, uint32_t n_vocab, int n_rows) {
    Rows r{n_vocab, {}, {}};
    for (int i = 0; i < n_rows; ++i) {
        const float sigma = random.uniform(0.5f, 8.0f);
        std::vector<float> row = random.normal(n_vocab, sigma);
        // Some rows with ties for the top (the first one counts) or one dominant token.
        if (n_vocab > 3 && i % 3 == 1)
            row[n_vocab - 1] = row[1] = *std::max_element(row.begin(), row.end()) + 1;
        if (i % 5 == 4)
            row[static_cast<size_t>(random.uniform_int(0, static_cast<int>(n_vocab) - 1))] += 40;
        r.logits.insert(r.logits.end(), row.begin(), row.end());
        r.targets.push_back(random.uniform_int(0, static_cast<int>(n_vocab) - 1));
    }
    return r;
}

std::string write_file(const Rows& rows, const std::string& name, uint64_t hash = 42) {
    const std::string path = temp_path(name);
    // n_ctx 4 scores one position per chunk: one chunk per row.
    const uint32_t n_rows = static_cast<uint32_t>(rows.targets.size());
    LogitsFileWriter out(path, {rows.n_vocab, 4, n_rows, hash});
    std::vector<uint8_t> record(logits_record_bytes(rows.n_vocab));
    for (uint32_t i = 0; i < n_rows; ++i) {
        LogitsFileWriter::encode(&rows.logits[size_t{i} * rows.n_vocab], rows.n_vocab,
                                 rows.targets[i], record.data());
        out.append(record.data(), 1);
    }
    out.finish();
    return path;
}

TEST(LogitsFile, EveryPositionEncodesItsLogSoftmax) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (const uint32_t n_vocab : {1u, 2u, 7u, 61u, 1000u, 4099u}) {
        SCOPED_TRACE(n_vocab);
        const Rows rows = random_rows(random, n_vocab, 7);
        const std::string path = write_file(rows, "encode");
        const LogitsFile file = LogitsFile::open(path);
        EXPECT_EQ(file.header().n_vocab, n_vocab);
        EXPECT_EQ(file.header().n_chunks, 7u);
        EXPECT_EQ(file.header().tokens_hash, 42u);
        ASSERT_EQ(file.n_records(), 7u);
        for (uint32_t i = 0; i < 7; ++i) {
            const float* x = &rows.logits[size_t{i} * n_vocab];
            long double max = x[0];
            int32_t top = 0;
            for (uint32_t t = 1; t < n_vocab; ++t) {
                if (x[t] > max) {
                    max = x[t];
                    top = static_cast<int32_t>(t);
                }
            }
            long double sum = 0;
            for (uint32_t t = 0; t < n_vocab; ++t) sum += std::exp(x[t] - max);
            const long double lse = max + std::log(sum);
            const BaseRecord r = file.record(i);
            EXPECT_EQ(r.top, top);
            EXPECT_NEAR(r.nll, static_cast<double>(lse - x[rows.targets[i]]), 1e-5 * (1 + r.nll));
            EXPECT_NEAR(r.top_log_prob, static_cast<double>(max - lse), 1e-6);
            const LogProbGrid grid(r.top_log_prob);
            ASSERT_GT(grid.step, 0);
            for (uint32_t t = 0; t < n_vocab; ++t) {
                const double lp = static_cast<double>(x[t] - lse);
                const int code = r.code(t);
                if (lp <= k_log_prob_floor + grid.step / 2 - 1e-9) {
                    EXPECT_EQ(code, 0) << "token " << t << " log-prob " << lp;
                } else if (lp > k_log_prob_floor + grid.step / 2 + 1e-9) {
                    EXPECT_GE(code, 1);
                    EXPECT_NEAR(grid.value(code), lp, grid.step / 2 + 1e-7) << "token " << t;
                }
            }
            EXPECT_EQ(r.code(static_cast<uint32_t>(top)), 65535);
        }
        std::filesystem::remove(path);
    }
}

TEST(LogitsFile, HashIdentifiesTheTokens) {
    const std::vector<int32_t> a{2, 7978, 236761}, b{2, 236761, 7978};
    EXPECT_EQ(hash_tokens({}), 0xcbf29ce484222325ull);
    EXPECT_EQ(hash_tokens(a), hash_tokens(std::vector<int32_t>{2, 7978, 236761}));
    EXPECT_NE(hash_tokens(a), hash_tokens(b));
    EXPECT_NE(hash_tokens(a), hash_tokens(std::span(a).first(2)));
}

TEST(LogitsFile, DamagedFilesAreErrors) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const Rows rows = random_rows(random, 33, 3);
    const std::string path = write_file(rows, "damage");
    const std::vector<uint8_t> good = read_all(path);
    std::filesystem::remove(path);
    ASSERT_EQ(good.size(), k_logits_header_bytes + 3 * logits_record_bytes(33));
    EXPECT_NO_THROW(LogitsFile::parse(good, "good"));

    // Every truncation is refused, naming the file.
    for (size_t n = 0; n < good.size(); n += 1 + static_cast<size_t>(random.uniform_int(0, 9))) {
        expect_error([&] { LogitsFile::parse(std::span(good).first(n), "cut.lgp"); }, "cut.lgp");
    }
    expect_error([&] { LogitsFile::parse(std::span(good).first(good.size() - 1), "f"); },
                 "truncated");
    std::vector<uint8_t> longer = good;
    longer.push_back(0);
    expect_error([&] { LogitsFile::parse(longer, "f"); }, "trailing bytes");

    const auto patched = [&](size_t offset, uint32_t value) {
        std::vector<uint8_t> b = good;
        std::memcpy(&b[offset], &value, 4);
        return b;
    };
    expect_error([&] { LogitsFile::parse(patched(0, 0x6f6c5f5f), "f"); },
                 "not an edgeq logits file");
    expect_error([&] { LogitsFile::parse(patched(8, 2), "f"); }, "version 2");
    expect_error([&] { LogitsFile::parse(patched(12, 0), "f"); }, "vocabulary of 0");
    expect_error([&] { LogitsFile::parse(patched(16, 2), "f"); }, "context of 2");
    expect_error([&] { LogitsFile::parse(patched(24, 5), "f"); }, "positions per chunk");
    expect_error([&] { LogitsFile::parse(patched(28, 99), "f"); }, "records of 99 bytes");
    // More chunks than the bytes hold.
    expect_error([&] { LogitsFile::parse(patched(20, 0xffffffffu), "f"); }, "truncated");

    // Records with impossible fields are refused when read.
    const size_t r1 = k_logits_header_bytes + logits_record_bytes(33);
    // parse() refers to the bytes, which must outlive the LogitsFile.
    const std::vector<uint8_t> nan_bytes = patched(r1, 0x7fc00000);
    const LogitsFile nan = LogitsFile::parse(nan_bytes, "f");
    EXPECT_NO_THROW(nan.record(0));
    expect_error([&] { nan.record(1); }, "record 1 at offset");
    const std::vector<uint8_t> top_bytes = patched(r1 + 4, 33);
    const LogitsFile top = LogitsFile::parse(top_bytes, "f");
    expect_error([&] { top.record(1); }, "top token 33");
    expect_error([&] { top.record(3); }, "record 3 of 3");
}

TEST(LogitsFile, WriterLeavesNothingUnlessFinished) {
    const std::string path = temp_path("unfinished");
    {
        LogitsFileWriter out(path, {5, 8, 2, 1});
        std::vector<uint8_t> record(logits_record_bytes(5));
        const float logits[5] = {1, 2, 3, 4, 5};
        LogitsFileWriter::encode(logits, 5, 0, record.data());
        out.append(record.data(), 1);
        expect_error([&] { out.finish(); }, "1 positions written, 6 expected");
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    for (const auto& entry :
         std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
        EXPECT_EQ(entry.path().string().find(path + ".tmp-"), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace edgeq
