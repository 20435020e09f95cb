// GGUF: what the writer writes, the reader reads back exactly; malformed files are refused
// with an Error naming the problem, whatever part of the file is damaged.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/formats/gguf-writer.h"
#include "edgeq/formats/gguf.h"
#include "test-random.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;

// Builds GGUF bytes field by field, independently of GgufWriter, so tests can damage any part.
class Bytes {
  public:
    template <typename T>
    Bytes& put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        data.insert(data.end(), p, p + sizeof(T));
        return *this;
    }
    Bytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        data.insert(data.end(), s.begin(), s.end());
        return *this;
    }
    Bytes& pad_to(size_t alignment) {
        while (data.size() % alignment != 0) data.push_back(0);
        return *this;
    }
    std::vector<uint8_t> data;
};

// A small valid file: two metadata keys, two F32 tensors of 8 and 4 values.
Bytes valid_file() {
    Bytes b;
    b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(2);
    b.str("general.architecture").put<uint32_t>(8).str("llama");
    b.str("test.count").put<uint32_t>(4).put<uint32_t>(7);
    b.str("a.weight")
        .put<uint32_t>(2)
        .put<uint64_t>(4)
        .put<uint64_t>(2)
        .put<uint32_t>(0)
        .put<uint64_t>(0);
    b.str("b.weight").put<uint32_t>(1).put<uint64_t>(4).put<uint32_t>(0).put<uint64_t>(32);
    b.pad_to(32);
    for (int i = 0; i < 8; ++i) b.put<float>(static_cast<float>(i));
    b.pad_to(32);
    for (int i = 0; i < 4; ++i) b.put<float>(static_cast<float>(-i));
    return b;
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& fragment) {
    try {
        GgufFile::parse(bytes, "bad.gguf");
        FAIL() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("bad.gguf"), std::string::npos) << e.what();
    }
}

std::string temp_path(const std::string& name) {
    return (fs::path(::testing::TempDir()) / (std::to_string(::getpid()) + "-" + name)).string();
}

TEST(Gguf, ReadsAHandBuiltFile) {
    const Bytes b = valid_file();
    const GgufFile f = GgufFile::parse(b.data, "valid.gguf");
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.get("general.architecture").to_string(), "llama");
    EXPECT_EQ(f.get("test.count").to_uint(), 7u);
    ASSERT_EQ(f.tensors().size(), 2u);
    const GgufTensorInfo& a = f.tensors()[0];
    EXPECT_EQ(a.shape, (std::vector<int64_t>{4, 2}));
    EXPECT_EQ(a.n_bytes, 32u);
    float values[8];
    std::memcpy(values, f.tensor_data(a), sizeof(values));
    for (int i = 0; i < 8; ++i) EXPECT_EQ(values[i], static_cast<float>(i));
    std::memcpy(values, f.tensor_data(*f.find_tensor("b.weight")), 16);
    EXPECT_EQ(values[3], -3.0f);
}

TEST(Gguf, EveryTruncationIsAnError) {
    const Bytes b = valid_file();
    for (size_t n = 0; n < b.data.size(); ++n) {
        const std::vector<uint8_t> prefix(b.data.begin(), b.data.begin() + static_cast<long>(n));
        EXPECT_THROW(GgufFile::parse(prefix, "cut.gguf"), Error) << "prefix of " << n << " bytes";
    }
}

TEST(Gguf, RandomDamageNeverCrashes) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const Bytes b = valid_file();
    for (int trial = 0; trial < 3000; ++trial) {
        std::vector<uint8_t> bytes = b.data;
        const int n_flips = random.uniform_int(1, 4);
        for (int i = 0; i < n_flips; ++i) {
            bytes[static_cast<size_t>(random.uniform_int(0, static_cast<int>(bytes.size()) - 1))] =
                static_cast<uint8_t>(random.uniform_int(0, 255));
        }
        try {
            const GgufFile f = GgufFile::parse(bytes, "flipped.gguf");
            for (const GgufTensorInfo& t : f.tensors()) {
                ASSERT_LE(f.data_offset() + t.offset + t.n_bytes, bytes.size());
            }
        } catch (const Error&) {
        }
    }
}

TEST(Gguf, RefusesMalformedHeaders) {
    {
        Bytes b = valid_file();
        b.data[0] = 'X';
        expect_error(b.data, "not a GGUF file");
    }
    for (uint32_t version : {1u, 4u, 0x03000000u}) {
        Bytes b = valid_file();
        std::memcpy(b.data.data() + 4, &version, 4);
        expect_error(b.data, version == 0x03000000u ? "big-endian" : "version");
    }
    {
        Bytes b = valid_file();
        const uint64_t huge = uint64_t{1} << 60;
        std::memcpy(b.data.data() + 8, &huge, 8);
        expect_error(b.data, "tensor count");
    }
    {
        Bytes b = valid_file();
        const uint64_t huge = uint64_t{1} << 60;
        std::memcpy(b.data.data() + 16, &huge, 8);
        expect_error(b.data, "metadata count");
    }
    {
        Bytes b = valid_file();
        const uint64_t huge = uint64_t{1} << 40;  // the first key's length
        std::memcpy(b.data.data() + 24, &huge, 8);
        expect_error(b.data, "claims");
    }
}

Bytes one_key_file(const std::function<void(Bytes&)>& value) {
    Bytes b;
    b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
    b.str("k");
    value(b);
    return b;
}

TEST(Gguf, RefusesMalformedMetadata) {
    expect_error(one_key_file([](Bytes& b) { b.put<uint32_t>(13).put<uint32_t>(0); }).data,
                 "unknown value type 13");
    expect_error(one_key_file([](Bytes& b) { b.put<uint32_t>(7).put<uint8_t>(2); }).data, "BOOL");
    expect_error(one_key_file([](Bytes& b) {
                     b.put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(1ull << 50);
                 }).data,
                 "more than the file holds");
    expect_error(one_key_file([](Bytes& b) {
                     b.put<uint32_t>(9)
                         .put<uint32_t>(8)
                         .put<uint64_t>(2)
                         .str("a")
                         .put<uint64_t>(100)
                         .put<uint64_t>(0);
                 }).data,
                 "claims 100 bytes");
    // Arrays nested deeper than the reader accepts.
    expect_error(one_key_file([](Bytes& b) {
                     b.put<uint32_t>(9);
                     for (int i = 0; i < 20; ++i) b.put<uint32_t>(9).put<uint64_t>(1);
                     b.put<uint32_t>(4).put<uint64_t>(1).put<uint32_t>(5);
                 }).data,
                 "deeper");
    {
        Bytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(2);
        b.str("k").put<uint32_t>(4).put<uint32_t>(1);
        b.str("k").put<uint32_t>(4).put<uint32_t>(2);
        expect_error(b.data, "duplicate metadata key 'k'");
    }
    {
        Bytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
        b.str("general.alignment").put<uint32_t>(4).put<uint32_t>(48);
        expect_error(b.data, "power of two");
    }
    {
        Bytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
        b.str("general.alignment").put<uint32_t>(10).put<uint64_t>(64);
        expect_error(b.data, "expected UINT32");
    }
}

// A file with one tensor described by the given fields, followed by `data_bytes` bytes of data.
Bytes one_tensor_file(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
                      uint64_t offset, size_t data_bytes) {
    Bytes b;
    b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(0);
    b.str(name).put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) b.put<uint64_t>(d);
    b.put<uint32_t>(type).put<uint64_t>(offset);
    b.pad_to(32);
    b.data.resize(b.data.size() + data_bytes, 0x11);
    return b;
}

TEST(Gguf, RefusesMalformedTensors) {
    expect_error(one_tensor_file("t", {32}, 99, 0, 128).data, "unknown type id 99");
    expect_error(one_tensor_file("t", {32}, 36, 0, 128).data, "unknown type id 36");
    expect_error(one_tensor_file("t", {1, 1, 1, 1, 1}, 0, 0, 128).data, "dimensions");
    expect_error(one_tensor_file("t", {48}, 12, 0, 1024).data,
                 "whole number of Q4_K blocks");  // 48 % 256
    expect_error(one_tensor_file("t", {32}, 0, 8, 256).data, "not a multiple of the alignment");
    expect_error(one_tensor_file("t", {64}, 0, 0, 128).data, "past the end");
    expect_error(one_tensor_file("t", {1ull << 40, 1ull << 40}, 0, 0, 128).data, "overflows");
    expect_error(one_tensor_file("t", {32}, 0, 1ull << 62, 128).data, "past the end");
    {
        Bytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(0);
        b.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(0);
        b.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(32);
        b.pad_to(32);
        b.data.resize(b.data.size() + 64);
        expect_error(b.data, "duplicate tensor name 't'");
    }
    {
        Bytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(0);
        b.str("t").put<uint32_t>(1).put<uint64_t>(16).put<uint32_t>(0).put<uint64_t>(0);
        b.str("u").put<uint32_t>(1).put<uint64_t>(16).put<uint32_t>(0).put<uint64_t>(32);
        b.pad_to(32);
        b.data.resize(b.data.size() + 128);
        expect_error(b.data, "overlap");
    }
}

TEST(Gguf, RefusesTensorDataOffFourByteBoundaries) {
    // general.alignment 1 lets a tensor start anywhere; edgeq reads data in place and needs
    // 4-byte boundaries (found by the fuzzer: a misaligned F16 read).
    for (uint64_t want_mod : {0u, 1u, 2u, 3u}) {
        Bytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(1);
        b.str("general.alignment").put<uint32_t>(4).put<uint32_t>(1);
        b.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(1);  // 8 F16 values
        const size_t offset_field = b.data.size();
        b.put<uint64_t>(0);
        const uint64_t start = b.data.size();  // alignment 1: the data section starts here
        const uint64_t offset = (want_mod + 4 - start % 4) % 4;
        std::memcpy(b.data.data() + offset_field, &offset, sizeof offset);
        b.data.resize(b.data.size() + offset + 16, 0x3c);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(b.data.data()) % 8, 0u);
        if (want_mod == 0) {
            EXPECT_NO_THROW(GgufFile::parse(b.data, "bad.gguf"));
        } else {
            expect_error(b.data, "4-byte boundary");
        }
    }
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensor) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const std::string path = temp_path("round-trip.gguf");
    const std::vector<float> floats = random.normal(256 * 3);
    std::vector<uint8_t> q4k(144 * 2);
    for (auto& byte : q4k) byte = static_cast<uint8_t>(random.uniform_int(0, 255));
    const std::vector<int32_t> ints{1, -2, 3};
    const GgufValue nested = GgufValue::make_array_of_arrays(
        {GgufValue::make_string_array({"x", "y"}),
         GgufValue::make_array_of_arrays(
             {GgufValue::make_numeric_array<int32_t>(GgufType::int32, ints)})});
    GgufMetadata expected{
        {"u8", GgufValue::make_uint8(200)},
        {"i8", GgufValue::make_int8(-100)},
        {"u16", GgufValue::make_uint16(60000)},
        {"i16", GgufValue::make_int16(-30000)},
        {"u32", GgufValue::make_uint32(4000000000)},
        {"i32", GgufValue::make_int32(-2000000000)},
        {"u64", GgufValue::make_uint64(1ull << 63)},
        {"i64", GgufValue::make_int64(-(1ll << 62))},
        {"f32", GgufValue::make_float32(1.5f)},
        {"f64", GgufValue::make_float64(-2.25)},
        {"bool", GgufValue::make_bool(true)},
        {"str", GgufValue::make_string("héllo \n")},
        {"strs", GgufValue::make_string_array({"a", "", "ccc"})},
        {"ints", GgufValue::make_numeric_array<int32_t>(GgufType::int32, ints)},
        {"nested", nested},
    };
    {
        GgufWriter w(path, 64);
        for (const auto& [k, v] : expected) w.set(k, v);
        w.add_tensor("f", GgmlType::F32, {256, 3});
        w.add_tensor("q", GgmlType::Q4_K, {256, 2});
        w.add_tensor("v", GgmlType::F32, {5});
        w.write_header();
        const auto* fb = reinterpret_cast<const uint8_t*>(floats.data());
        w.write(
            std::span<const uint8_t>(fb, 1000));  // chunks that do not follow row or tensor bounds
        w.write(std::span<const uint8_t>(fb + 1000, floats.size() * 4 - 1000));
        w.write(q4k);
        const float v[5] = {1, 2, 3, 4, 5};
        w.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v), sizeof(v)));
        w.finish();
    }
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.alignment(), 64u);
    for (const auto& [k, v] : expected) {
        ASSERT_NE(f.find(k), nullptr) << k;
        EXPECT_TRUE(*f.find(k) == v) << k << ": " << f.find(k)->summary() << " vs " << v.summary();
    }
    EXPECT_EQ(f.get("nested").element_at(1).element_at(0).element_at(2).to_int(), 3);
    ASSERT_EQ(f.tensors().size(), 3u);
    for (const GgufTensorInfo& t : f.tensors())
        EXPECT_EQ((f.data_offset() + t.offset) % 64, 0u) << t.name;
    EXPECT_EQ(std::memcmp(f.tensor_data(f.tensors()[0]), floats.data(), floats.size() * 4), 0);
    EXPECT_EQ(std::memcmp(f.tensor_data(f.tensors()[1]), q4k.data(), q4k.size()), 0);
    EXPECT_EQ(f.tensors()[1].type, GgmlType::Q4_K);
    fs::remove(path);
}

TEST(GgufWriter, LeavesNothingBehindUnlessFinished) {
    const std::string path = temp_path("unfinished.gguf");
    {
        GgufWriter w(path);
        w.add_tensor("t", GgmlType::F32, {8});
        w.write_header();
        const float v[4] = {};
        w.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v), sizeof(v)));
        EXPECT_THROW(w.finish(), Error);  // half a tensor
    }
    EXPECT_FALSE(fs::exists(path));
    for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path())) {
        EXPECT_EQ(entry.path().filename().string().find(fs::path(path).filename().string()),
                  std::string::npos)
            << "left " << entry.path();
    }
}

TEST(GgufWriter, RefusesBadDeclarations) {
    GgufWriter w(temp_path("bad.gguf"));
    w.add_tensor("t", GgmlType::F32, {8});
    EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {8}), Error);
    EXPECT_THROW(w.add_tensor("q", GgmlType::Q4_K, {100}), Error);
    EXPECT_THROW(w.add_tensor("e", GgmlType::F32, {}), Error);
    w.write_header();
    EXPECT_THROW(w.set("late", GgufValue::make_bool(true)), Error);
    std::vector<uint8_t> too_much(64);
    EXPECT_THROW(w.write(too_much), Error);
}

}  // namespace
}  // namespace edgeq
