// MappedFile: maps a file's bytes, an empty file, refuses what it cannot map with an
// edgeq::Error naming the path, and keeps data readable after release().
#include "edgeq/core/mapped-file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "edgeq/core/error.h"
#include "test-random.h"

namespace edgeq {
namespace {

// A fresh directory under the test temporary directory, removed with its files at the end.
class MappedFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = ::testing::TempDir() + "edgeq-mapped-file-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override {
        for (const auto& path : files_) std::remove(path.c_str());
        for (const auto& path : dirs_) ::rmdir(path.c_str());
        ::rmdir(dir_.c_str());
    }

    std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
        const std::string path = dir_ + "/" + name;
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()),
                  static_cast<std::streamsize>(bytes.size()));
        EXPECT_TRUE(out.good());
        files_.push_back(path);
        return path;
    }

    std::vector<uint8_t> random_bytes(size_t n) {
        std::uniform_int_distribution<int> byte(0, 255);
        std::vector<uint8_t> v(n);
        for (auto& b : v) b = static_cast<uint8_t>(byte(random_.engine()));
        return v;
    }

    testing::Random random_;
    std::string dir_;
    std::vector<std::string> files_;
    std::vector<std::string> dirs_;
};

void expect_bytes(const MappedFile& file, const std::vector<uint8_t>& expected) {
    ASSERT_EQ(file.size(), expected.size());
    ASSERT_EQ(file.bytes().size(), expected.size());
    if (expected.empty()) return;
    ASSERT_NE(file.data(), nullptr);
    EXPECT_EQ(file.bytes().data(), file.data());
    size_t mismatches = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        if (file.data()[i] != expected[i] && mismatches++ < 5) {
            ADD_FAILURE() << "byte " << i << ": " << int(file.data()[i])
                          << " != " << int(expected[i]);
        }
    }
    EXPECT_EQ(mismatches, 0u);
}

TEST_F(MappedFileTest, MapsTheFileBytes) {
    SCOPED_TRACE(random_.trace());
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    for (size_t n : {size_t{1}, size_t{7}, page - 1, page, page + 1, 3 * page + 123}) {
        const std::vector<uint8_t> bytes = random_bytes(n);
        const std::string path = write_file("file-" + std::to_string(n) + ".bin", bytes);
        const MappedFile file(path);
        EXPECT_EQ(file.path(), path);
        expect_bytes(file, bytes);
    }
}

TEST_F(MappedFileTest, EmptyFile) {
    const std::string path = write_file("empty.bin", {});
    const MappedFile file(path);
    EXPECT_EQ(file.size(), 0u);
    EXPECT_TRUE(file.bytes().empty());
    file.release(0, 100);  // harmless on an empty mapping
    file.advise_sequential(0, 100);
}

TEST_F(MappedFileTest, MissingFileIsAnErrorNamingThePath) {
    const std::string path = dir_ + "/no-such-file.gguf";
    try {
        MappedFile file(path);
        FAIL() << "no error for a missing file";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST_F(MappedFileTest, DirectoryIsRefused) {
    const std::string path = dir_ + "/a-directory";
    ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
    dirs_.push_back(path);
    try {
        MappedFile file(path);
        FAIL() << "a directory was mapped";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST_F(MappedFileTest, ReleaseKeepsDataReadable) {
    SCOPED_TRACE(random_.trace());
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const std::vector<uint8_t> bytes = random_bytes(8 * page + 77);
    const MappedFile file(write_file("release.bin", bytes));
    expect_bytes(file, bytes);
    // Ranges that start and end inside pages, cover the tail, run past the end, or start
    // past it.
    file.release(page / 2, 2 * page);
    expect_bytes(file, bytes);
    file.release(5 * page + 3, 100 * page);
    expect_bytes(file, bytes);
    file.release(bytes.size() + 10, page);
    file.release(0, bytes.size());
    expect_bytes(file, bytes);
    file.advise_sequential(0, bytes.size());
    file.advise_sequential(3 * page + 1, SIZE_MAX);
    expect_bytes(file, bytes);
    file.release(0, SIZE_MAX);
    expect_bytes(file, bytes);
}

TEST_F(MappedFileTest, MoveKeepsTheMapping) {
    SCOPED_TRACE(random_.trace());
    const std::vector<uint8_t> a = random_bytes(5000);
    const std::vector<uint8_t> b = random_bytes(123);
    const std::string path_a = write_file("a.bin", a);
    MappedFile first(path_a);
    MappedFile second(std::move(first));
    EXPECT_EQ(first.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(first.data(), nullptr);
    expect_bytes(second, a);
    EXPECT_EQ(second.path(), path_a);

    MappedFile third(write_file("b.bin", b));
    third = std::move(second);  // unmaps b, takes a
    expect_bytes(third, a);
    MappedFile empty;
    EXPECT_EQ(empty.size(), 0u);
    EXPECT_EQ(empty.data(), nullptr);
    empty = std::move(third);
    expect_bytes(empty, a);
}

}  // namespace
}  // namespace edgeq
