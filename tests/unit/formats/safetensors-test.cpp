// safetensors: what the writer writes the reader reads back byte for byte, for every dtype;
// conversions to float match references computed here from the bit layouts; every malformed
// input is one edgeq::Error with a useful message; the writer never leaves a partial file.
#include "edgeq/formats/safetensors.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "test-random.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the test temp dir, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        std::string pattern = ::testing::TempDir() + "edgeq-safetensors-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
        return names;
    }

  private:
    std::string path_;
};

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> random_bytes(testing::Random& random, size_t n) {
    std::vector<uint8_t> bytes(n);
    for (auto& b : bytes) b = static_cast<uint8_t>(random.engine()());
    return bytes;
}

// Runs `f`, which must throw an edgeq::Error whose message contains every fragment.
void expect_error(const std::function<void()>& f, std::vector<std::string> fragments) {
    try {
        f();
        ADD_FAILURE() << "no Error thrown; expected one containing '" << fragments[0] << "'";
    } catch (const Error& e) {
        for (const std::string& fragment : fragments) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
                << "message: " << e.what() << "\nexpected to contain: " << fragment;
        }
    }
}

// A file in memory: the 8-byte length (of `header`, unless given), the header, the data.
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data = {},
                               std::optional<uint64_t> length = std::nullopt) {
    const uint64_t n = length.value_or(header.size());
    std::vector<uint8_t> bytes(8 + header.size() + data.size());
    for (size_t i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(n >> (8 * i));
    std::copy(header.begin(), header.end(), bytes.begin() + 8);
    std::copy(data.begin(), data.end(), bytes.begin() + 8 + static_cast<ptrdiff_t>(header.size()));
    return bytes;
}

struct Written {
    std::string name;
    SafetensorsDType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

// Writes `tensors` to `path`, each in chunks of random sizes.
void write_file(const std::string& path, const std::vector<Written>& tensors,
                testing::Random& random,
                const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
    SafetensorsWriter out(path);
    for (const auto& [k, v] : metadata) out.add_metadata(k, v);
    for (const Written& t : tensors) out.add_tensor(t.name, t.dtype, t.shape);
    for (const Written& t : tensors) {
        size_t done = 0;
        while (done < t.bytes.size()) {
            const size_t n = std::min<size_t>(t.bytes.size() - done,
                                              static_cast<size_t>(random.uniform_int(1, 40)));
            out.write(t.bytes.data() + done, n);
            done += n;
        }
    }
    out.finish();
}

Written random_tensor(testing::Random& random, const std::string& name, SafetensorsDType dtype) {
    Written t{name, dtype, {}, {}};
    const int rank = random.uniform_int(0, 4);
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) {
        t.shape.push_back(random.uniform_int(random.uniform_int(0, 9) == 0 ? 0 : 1, 7));
        n *= t.shape.back();
    }
    t.bytes = random_bytes(random, static_cast<size_t>(n) * safetensors_dtype_size(dtype));
    return t;
}

void expect_same(const SafetensorsTensor& got, const Written& want) {
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.dtype, want.dtype);
    EXPECT_EQ(got.shape, want.shape);
    int64_t n = 1;
    for (int64_t d : want.shape) n *= d;
    EXPECT_EQ(got.n_elements, n);
    ASSERT_EQ(got.n_bytes, want.bytes.size());
    EXPECT_TRUE(std::equal(want.bytes.begin(), want.bytes.end(), got.data));
}

// Scalar references from the bit layouts, independent of the implementation.
float reference_minifloat(uint32_t code, int exponent_bits, int mantissa_bits, int bias,
                          bool ieee_specials) {
    const bool negative = (code >> (exponent_bits + mantissa_bits)) & 1;
    const int e = static_cast<int>((code >> mantissa_bits) & ((1u << exponent_bits) - 1));
    const int m = static_cast<int>(code & ((1u << mantissa_bits) - 1));
    const int e_max = (1 << exponent_bits) - 1;
    double value;
    if (ieee_specials && e == e_max) {
        value = m == 0 ? INFINITY : NAN;
    } else if (!ieee_specials && e == e_max && m == (1 << mantissa_bits) - 1) {
        value = NAN;
    } else if (e == 0) {
        value = std::ldexp(static_cast<double>(m), 1 - bias - mantissa_bits);
    } else {
        value = std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -mantissa_bits), e - bias);
    }
    return static_cast<float>(negative ? -value : value);
}

void expect_same_float(float got, float want, uint32_t code) {
    if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got)) << "code " << code << ": got " << got;
    } else {
        EXPECT_EQ(got, want) << "code " << code;
        EXPECT_EQ(std::signbit(got), std::signbit(want)) << "code " << code;
    }
}

// The folder of fuzz seeds, found from this file's path; empty if the build moved it.
fs::path corpus_dir() {
    const fs::path dir = fs::path(__FILE__).parent_path() / "../../fuzz/corpus/safetensors";
    std::error_code ec;
    return fs::is_directory(dir, ec) ? dir : fs::path();
}

TEST(SafetensorsTest, RoundTripsEveryDtype) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    TempDir dir;
    std::vector<Written> tensors;
    for (int round = 0; round < 3; ++round) {
        for (SafetensorsDType dtype : all_safetensors_dtypes()) {
            const std::string name =
                fmt::format("layers.{}.{}", round, safetensors_dtype_name(dtype));
            tensors.push_back(random_tensor(random, name, dtype));
        }
    }
    const std::vector<std::pair<std::string, std::string>> metadata = {
        {"format", "pt"}, {"note", "ünïcode ✓"}, {"empty", ""}};
    const std::string path = dir.file("all.safetensors");
    write_file(path, tensors, random, metadata);

    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_EQ(file.data_offset() % 8, 0u);
    uint64_t total = 0;
    for (const Written& t : tensors) total += t.bytes.size();
    EXPECT_EQ(file.file_size(), file.data_offset() + total);
    ASSERT_EQ(file.metadata().size(), metadata.size());
    for (const auto& [k, v] : metadata) {
        ASSERT_NE(file.find_metadata(k), nullptr) << k;
        EXPECT_EQ(*file.find_metadata(k), v);
    }
    ASSERT_EQ(file.tensors().size(), tensors.size());
    for (const Written& t : tensors) expect_same(file.tensor(t.name), t);
    for (size_t i = 1; i < file.tensors().size(); ++i) {
        EXPECT_LE(file.tensors()[i - 1].offset, file.tensors()[i].offset);
    }
    // The writer lays tensors back to back in declaration order.
    uint64_t offset = file.data_offset();
    for (const Written& t : tensors) {
        EXPECT_EQ(file.tensor(t.name).offset, offset) << t.name;
        offset += t.bytes.size();
    }

    // Parsing the same bytes from memory gives the same tensors, pointing into those bytes.
    const std::vector<uint8_t> bytes = read_bytes(path);
    const SafetensorsFile parsed = SafetensorsFile::parse(bytes, "in-memory");
    ASSERT_EQ(parsed.tensors().size(), tensors.size());
    for (const Written& t : tensors) {
        const SafetensorsTensor& got = parsed.tensor(t.name);
        expect_same(got, t);
        EXPECT_GE(got.data, bytes.data());
        EXPECT_LE(got.data + got.n_bytes, bytes.data() + bytes.size());
        EXPECT_EQ(got.offset, static_cast<uint64_t>(got.data - bytes.data()));
    }
    EXPECT_EQ(parsed.find_tensor("absent"), nullptr);
    expect_error([&] { (void)parsed.tensor("absent"); }, {"in-memory", "no tensor 'absent'"});
}

TEST(SafetensorsTest, WritesLargeTensorsInUnevenChunks) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    TempDir dir;
    // Larger than the writer's 4 MiB buffer, between small tensors.
    std::vector<Written> tensors = {
        {"small.0", SafetensorsDType::F16, {3}, random_bytes(random, 6)},
        {"large", SafetensorsDType::U8, {5 << 20 | 3}, random_bytes(random, 5 << 20 | 3)},
        {"small.1", SafetensorsDType::I8, {5}, random_bytes(random, 5)},
    };
    const std::string path = dir.file("large.safetensors");
    {
        SafetensorsWriter out(path);
        for (const Written& t : tensors) out.add_tensor(t.name, t.dtype, t.shape);
        for (const Written& t : tensors) {
            size_t done = 0;
            while (done < t.bytes.size()) {
                const size_t n = std::min<size_t>(
                    t.bytes.size() - done, static_cast<size_t>(random.uniform_int(1, 3 << 20)));
                out.write(std::span<const uint8_t>(t.bytes.data() + done, n));
                done += n;
            }
        }
        out.finish();
        EXPECT_TRUE(out.finished());
    }
    const SafetensorsFile file = SafetensorsFile::open(path);
    for (const Written& t : tensors) expect_same(file.tensor(t.name), t);
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"large.safetensors"});
}

TEST(SafetensorsTest, WritesFileWithoutTensors) {
    TempDir dir;
    const std::string path = dir.file("empty.safetensors");
    SafetensorsWriter out(path);
    out.finish();
    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_TRUE(file.tensors().empty());
    EXPECT_TRUE(file.metadata().empty());
    EXPECT_EQ(file.file_size(), 16u);  // the length, "{}" and six spaces
}

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(T));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
}

TEST(SafetensorsTest, ConvertsEveryDtypeToFloat) {
    TempDir dir;
    const double big = 1e300;
    const std::vector<Written> tensors = {
        {"f64",
         SafetensorsDType::F64,
         {7},
         as_bytes<double>({1.5, -0.1, big, -big, 0x1.fffffe8p127, 0x1.ffffffp127, 1e-50})},
        {"f32", SafetensorsDType::F32, {3}, as_bytes<float>({1.25f, -7.0f, 1e-42f})},
        {"i64",
         SafetensorsDType::I64,
         {3},
         as_bytes<int64_t>({std::numeric_limits<int64_t>::min(), -5, 1 << 24})},
        {"i32", SafetensorsDType::I32, {2}, as_bytes<int32_t>({-123456, 7})},
        {"i16", SafetensorsDType::I16, {2}, as_bytes<int16_t>({-32768, 32767})},
        {"i8", SafetensorsDType::I8, {2}, as_bytes<int8_t>({-128, 127})},
        {"u64", SafetensorsDType::U64, {1}, as_bytes<uint64_t>({~0ull})},
        {"u32", SafetensorsDType::U32, {1}, as_bytes<uint32_t>({4000000000u})},
        {"u16", SafetensorsDType::U16, {1}, as_bytes<uint16_t>({65535})},
        {"u8", SafetensorsDType::U8, {2}, as_bytes<uint8_t>({0, 255})},
        {"bool", SafetensorsDType::BOOL, {3}, as_bytes<uint8_t>({0, 1, 2})},
    };
    testing::Random random;
    write_file(dir.file("values.safetensors"), tensors, random);
    const SafetensorsFile file = SafetensorsFile::open(dir.file("values.safetensors"));
    const auto values = [&](const char* name) { return to_float(file.tensor(name)); };

    const std::vector<float> f64 = values("f64");
    EXPECT_EQ(f64[0], 1.5f);
    EXPECT_EQ(f64[1], static_cast<float>(-0.1));
    EXPECT_EQ(f64[2], INFINITY);
    EXPECT_EQ(f64[3], -INFINITY);
    EXPECT_EQ(f64[4], std::numeric_limits<float>::max());  // rounds down, not to infinity
    EXPECT_EQ(f64[5], INFINITY);  // half an ulp above the largest float: a tie, to even
    EXPECT_EQ(f64[6], 0.0f);
    EXPECT_EQ(values("f32"), (std::vector<float>{1.25f, -7.0f, 1e-42f}));
    EXPECT_EQ(values("i64"), (std::vector<float>{-9.223372e18f, -5.0f, 16777216.0f}));
    EXPECT_EQ(values("i32"), (std::vector<float>{-123456.0f, 7.0f}));
    EXPECT_EQ(values("i16"), (std::vector<float>{-32768.0f, 32767.0f}));
    EXPECT_EQ(values("i8"), (std::vector<float>{-128.0f, 127.0f}));
    EXPECT_EQ(values("u64"), (std::vector<float>{18446744073709551616.0f}));
    EXPECT_EQ(values("u32"), (std::vector<float>{4e9f}));
    EXPECT_EQ(values("u16"), (std::vector<float>{65535.0f}));
    EXPECT_EQ(values("u8"), (std::vector<float>{0.0f, 255.0f}));
    EXPECT_EQ(values("bool"), (std::vector<float>{0.0f, 1.0f, 1.0f}));

    // Part of a tensor, and ranges that are not in it.
    float two[2];
    to_float(file.tensor("i32"), 1, 1, two);
    EXPECT_EQ(two[0], 7.0f);
    to_float(file.tensor("i32"), 2, 0, two);
    expect_error([&] { to_float(file.tensor("i32"), 1, 2, two); },
                 {"'i32'", "2 elements from element 1", "has 2"});
    expect_error([&] { to_float(file.tensor("i32"), -1, 1, two); }, {"'i32'"});
    expect_error([&] { (void)half_words(file.tensor("f32")); }, {"'f32' is F32"});
}

TEST(SafetensorsTest, ConvertsF8E4M3AndF8E5M2AllCodes) {
    std::vector<uint8_t> codes(256);
    for (int i = 0; i < 256; ++i) codes[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    const std::string header =
        R"({"e4m3":{"dtype":"F8_E4M3","shape":[16,16],"data_offsets":[0,256]},)"
        R"("e5m2":{"dtype":"F8_E5M2","shape":[256],"data_offsets":[256,512]}})";
    std::vector<uint8_t> data = codes;
    data.insert(data.end(), codes.begin(), codes.end());
    const std::vector<uint8_t> bytes = make_file(header, data);
    const SafetensorsFile file = SafetensorsFile::parse(bytes, "f8");

    const std::vector<float> e4m3 = to_float(file.tensor("e4m3"));
    const std::vector<float> e5m2 = to_float(file.tensor("e5m2"));
    for (uint32_t code = 0; code < 256; ++code) {
        expect_same_float(e4m3[code], reference_minifloat(code, 4, 3, 7, false), code);
        expect_same_float(e5m2[code], reference_minifloat(code, 5, 2, 15, true), code);
        expect_same_float(f8_e4m3_to_fp32(static_cast<uint8_t>(code)), e4m3[code], code);
        expect_same_float(f8_e5m2_to_fp32(static_cast<uint8_t>(code)), e5m2[code], code);
    }
    // The landmarks of the OCP definitions.
    EXPECT_EQ(e4m3[0x7e], 448.0f);
    EXPECT_EQ(e4m3[0xfe], -448.0f);
    EXPECT_TRUE(std::isnan(e4m3[0x7f]) && std::isnan(e4m3[0xff]));
    EXPECT_EQ(e4m3[0x78], 256.0f);                // S.1111.000 is a number, not infinity
    EXPECT_EQ(e4m3[0x01], std::ldexp(1.0f, -9));  // smallest subnormal
    EXPECT_EQ(e5m2[0x7b], 57344.0f);
    EXPECT_EQ(e5m2[0x7c], INFINITY);
    EXPECT_EQ(e5m2[0xfc], -INFINITY);
    EXPECT_TRUE(std::isnan(e5m2[0x7d]));
    EXPECT_EQ(e5m2[0x01], std::ldexp(1.0f, -16));
}

TEST(SafetensorsTest, ConvertsF16AndBf16AllCodes) {
    std::vector<uint16_t> codes(65536);
    for (uint32_t i = 0; i < 65536; ++i) codes[i] = static_cast<uint16_t>(i);
    TempDir dir;
    testing::Random random;
    write_file(dir.file("half.safetensors"),
               {{"f16", SafetensorsDType::F16, {256, 256}, as_bytes(codes)},
                {"bf16", SafetensorsDType::BF16, {65536}, as_bytes(codes)}},
               random);
    const SafetensorsFile file = SafetensorsFile::open(dir.file("half.safetensors"));
    const std::vector<float> f16 = to_float(file.tensor("f16"));
    const std::vector<float> bf16 = to_float(file.tensor("bf16"));
    for (uint32_t code = 0; code < 65536; ++code) {
        expect_same_float(f16[code], reference_minifloat(code, 5, 10, 15, true), code);
        uint32_t bits = code << 16;
        float want;
        std::memcpy(&want, &bits, sizeof(want));
        expect_same_float(bf16[code], want, code);
        if (::testing::Test::HasFailure()) break;
    }
    const std::span<const uint16_t> words = half_words(file.tensor("bf16"));
    EXPECT_TRUE(std::equal(words.begin(), words.end(), codes.begin(), codes.end()));
    EXPECT_EQ(half_words(file.tensor("f16")).size(), 65536u);
}

TEST(SafetensorsTest, ReadsUnalignedData) {
    // An odd header length puts the F16 data at an odd address; conversion still works, the
    // zero-copy view refuses.
    const std::string header = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}} )";
    ASSERT_EQ(header.size() % 2, 1u);
    const std::vector<uint8_t> bytes = make_file(header, {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c});
    const SafetensorsFile file = SafetensorsFile::parse(bytes, "odd");
    EXPECT_EQ(to_float(file.tensor("h")), (std::vector<float>{1.0f, -2.0f, INFINITY}));
    if (reinterpret_cast<uintptr_t>(file.tensor("h").data) % 2 != 0) {
        expect_error([&] { (void)half_words(file.tensor("h")); }, {"not 2-byte aligned"});
    }
}

TEST(SafetensorsTest, AcceptsPaddingGapsAndEmptyTensors) {
    const std::string header = R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
                               R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                               R"("z":{"dtype":"F32","shape":[0,5],"data_offsets":[1,1]},)"
                               R"("s":{"dtype":"I8","shape":[],"data_offsets":[6,7]}}       )";
    const std::vector<uint8_t> bytes = make_file(header, {1, 2, 0, 0, 3, 4, 0xff, 9});
    const SafetensorsFile file = SafetensorsFile::parse(bytes, "gaps");
    ASSERT_EQ(file.tensors().size(), 4u);
    EXPECT_EQ(file.tensors()[0].name, "a");
    EXPECT_EQ(file.tensors()[1].name, "z");
    EXPECT_EQ(file.tensors()[2].name, "b");
    EXPECT_EQ(file.tensors()[3].name, "s");
    EXPECT_EQ(file.tensor("z").n_elements, 0);
    EXPECT_EQ(file.tensor("s").n_elements, 1);
    EXPECT_TRUE(file.tensor("s").shape.empty());
    EXPECT_EQ(to_float(file.tensor("s")), std::vector<float>{-1.0f});
    EXPECT_EQ(to_float(file.tensor("b")), (std::vector<float>{3.0f, 4.0f}));
}

struct Malformed {
    const char* label;
    std::vector<uint8_t> bytes;
    std::vector<std::string> fragments;
};

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets +
           "}";
}

std::vector<uint8_t> one_tensor(const std::string& json_entry, size_t n_data = 8) {
    return make_file(R"({"t":)" + json_entry + "}", std::vector<uint8_t>(n_data, 0));
}

TEST(SafetensorsTest, RejectsMalformedFiles) {
    const std::vector<Malformed> cases = {
        {"empty", {}, {"0 bytes", "too short"}},
        {"seven bytes", {1, 0, 0, 0, 0, 0, 0}, {"7 bytes", "too short"}},
        {"huge header length", make_file("{}", {}, uint64_t{1} << 62), {"offset 0", "limit"}},
        {"header past the end",
         make_file("{}", {}, 3),
         {"offset 0", "header length 3", "runs past the end"}},
        {"header just past limit", make_file("{}", {}, 100'000'001), {"limit"}},
        {"zero header length", make_file("", {}), {"does not start with '{'"}},
        {"not JSON", make_file("{nope}"), {"offset ", "not valid JSON"}},
        {"truncated JSON", make_file(R"({"t":{"dtype":"U8")"), {"not valid JSON"}},
        {"trailing garbage", make_file("{} x"), {"not valid JSON"}},
        {"trailing NUL padding", make_file(std::string("{}\0\0", 4)), {"offset 10", "NUL byte"}},
        {"NUL then garbage", make_file(std::string("{}\0x", 4)), {"offset 10", "NUL byte"}},
        {"array header", make_file("[1,2]"), {"does not start with '{'"}},
        {"bad UTF-8 name", make_file("{\"\xff\":{}}"), {"not valid JSON"}},
        {"entry not an object", make_file(R"({"t":[1]})"), {"tensor 't'", "expected an object"}},
        {"control characters in a name",
         make_file(R"({"a\nb\u001b[2J":[1]})"),
         {"tensor 'a\\x0ab\\x1b[2J'", "expected an object"}},
        {"missing dtype",
         one_tensor(R"({"shape":[1],"data_offsets":[0,1]})"),
         {"tensor 't'", "no \"dtype\""}},
        {"dtype not a string",
         one_tensor(R"({"dtype":4,"shape":[1],"data_offsets":[0,1]})"),
         {"\"dtype\" is a JSON number"}},
        {"unknown dtype", one_tensor(entry("F12", "[1]", "[0,2]")), {"unknown dtype 'F12'"}},
        {"lower-case dtype", one_tensor(entry("f32", "[1]", "[0,4]")), {"unknown dtype 'f32'"}},
        {"missing shape", one_tensor(R"({"dtype":"U8","data_offsets":[0,1]})"), {"no \"shape\""}},
        {"shape not an array",
         one_tensor(entry("U8", "3", "[0,3]")),
         {"\"shape\" is a JSON number"}},
        {"float dimension",
         one_tensor(entry("U8", "[1.0]", "[0,1]")),
         {"shape[0]", "not an integer"}},
        {"string dimension",
         one_tensor(entry("U8", R"([1,"2"])", "[0,2]")),
         {"shape[1] is string"}},
        {"negative dimension",
         one_tensor(entry("U8", "[2,-1]", "[0,0]")),
         {"shape[1] is negative (-1)"}},
        {"dimension past int64",
         one_tensor(entry("U8", "[9223372036854775808]", "[0,1]")),
         {"shape[0]", "not an integer that fits"}},
        {"shape overflow",
         one_tensor(entry("U8", "[4294967296,4294967296]", "[0,1]")),
         {"overflows 64 bits"}},
        {"shape overflow beside zero",
         one_tensor(entry("U8", "[0,4294967296,4294967296]", "[0,0]")),
         {"overflows 64 bits"}},
        {"bytes overflow",
         one_tensor(entry("F64", "[4611686018427387904]", "[0,8]")),
         {"overflow 64 bits"}},
        {"missing data_offsets",
         one_tensor(R"({"dtype":"U8","shape":[1]})"),
         {"no \"data_offsets\""}},
        {"one offset", one_tensor(entry("U8", "[1]", "[1]")), {"two integers"}},
        {"three offsets", one_tensor(entry("U8", "[1]", "[0,1,2]")), {"two integers"}},
        {"offsets not integers", one_tensor(entry("U8", "[1]", R"(["0","1"])")), {"two integers"}},
        {"float offsets", one_tensor(entry("U8", "[1]", "[0.0,1.0]")), {"two integers"}},
        {"negative offset", one_tensor(entry("U8", "[1]", "[-1,0]")), {"non-negative"}},
        {"reversed offsets", one_tensor(entry("U8", "[0]", "[4,2]")), {"end before they begin"}},
        {"wrong byte count",
         one_tensor(entry("F32", "[2]", "[0,4]")),
         {"tensor 't'", "hold 4 bytes", "needs 8"}},
        {"offsets past the end",
         one_tensor(entry("F32", "[4]", "[0,16]"), 8),
         {"tensor 't'", "[0, 16]", "past the end", "8 data bytes"}},
        {"offsets far past the end",
         one_tensor(entry("U8", "[1]",
                          "[18446744073709551614,"
                          "18446744073709551615]")),
         {"tensor 't'"}},
        {"overlap",
         make_file(R"({"a":)" + entry("U8", "[4]", "[0,4]") + R"(,"b":)" +
                       entry("U8", "[4]", "[2,6]") + "}",
                   std::vector<uint8_t>(6)),
         {"'a'", "'b'", "overlap"}},
        {"contained overlap",
         make_file(R"({"a":)" + entry("U8", "[8]", "[0,8]") + R"(,"b":)" +
                       entry("U8", "[2]", "[5,7]") + R"(,"c":)" + entry("U8", "[1]", "[2,3]") + "}",
                   std::vector<uint8_t>(8)),
         {"'a'", "overlap"}},
        {"duplicate tensor",
         make_file(R"({"t":)" + entry("U8", "[1]", "[0,1]") + R"(,"t":)" +
                       entry("U8", "[1]", "[1,2]") + "}",
                   std::vector<uint8_t>(2)),
         {"key 't' twice", "duplicate tensor name"}},
        {"duplicate field",
         one_tensor(R"({"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]})"),
         {"key 'dtype' twice"}},
        {"metadata not an object",
         make_file(R"({"__metadata__":[]})"),
         {"\"__metadata__\" is a JSON array"}},
        {"metadata value not a string",
         make_file(R"({"__metadata__":{"n":3}})"),
         {"\"__metadata__\" key 'n'", "expected a string"}},
        {"nested too deep", one_tensor(entry("U8", "[[1]]", "[0,1]")), {"nests"}},
        {"deep nesting", make_file(R"({"t":{"a":{"b":{"c":{}}}}})"), {"nests"}},
    };
    for (const Malformed& c : cases) {
        SCOPED_TRACE(c.label);
        std::vector<std::string> fragments = c.fragments;
        fragments.push_back("mem.safetensors");
        expect_error([&] { (void)SafetensorsFile::parse(c.bytes, "mem.safetensors"); }, fragments);
    }
}

TEST(SafetensorsTest, OpenNamesTheFile) {
    TempDir dir;
    const std::string short_path = dir.file("short.safetensors");
    write_bytes(short_path, {1, 2, 3});
    expect_error([&] { (void)SafetensorsFile::open(short_path); }, {short_path, "too short"});
    const std::string truncated = dir.file("truncated.safetensors");
    std::vector<uint8_t> bytes =
        make_file(R"({"t":)" + entry("F32", "[4]", "[0,16]") + "}", std::vector<uint8_t>(16));
    bytes.resize(bytes.size() - 3);
    write_bytes(truncated, bytes);
    expect_error([&] { (void)SafetensorsFile::open(truncated); }, {truncated, "past the end"});
    expect_error([&] { (void)SafetensorsFile::open(dir.file("absent.safetensors")); },
                 {"absent.safetensors", "cannot open"});
}

TEST(SafetensorsWriterTest, LeavesNothingWhenNotFinished) {
    testing::Random random;
    TempDir dir;
    {
        SafetensorsWriter out(dir.file("never.safetensors"));
        out.add_tensor("a", SafetensorsDType::F32, {4});
        EXPECT_EQ(dir.entries().size(), 1u);  // the temporary file, hidden beside the target
        EXPECT_TRUE(fs::path(out.temp_path()).filename().string().starts_with(".never"));
        const std::vector<uint8_t> half = random_bytes(random, 8);
        out.write(half);
    }
    EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsWriterTest, RefusesWrongChunksAndCleansUp) {
    testing::Random random;
    TempDir dir;
    const std::string path = dir.file("out.safetensors");
    const std::vector<uint8_t> bytes = random_bytes(random, 64);

    {
        SafetensorsWriter out(path);
        out.add_tensor("a", SafetensorsDType::F16, {3});
        out.add_tensor("b", SafetensorsDType::U8, {2});
        out.write(bytes.data(), 4);
        expect_error([&] { out.write(bytes.data(), 3); },
                     {"3 bytes for tensor 'a'", "only 2 of its 6 bytes remain"});
        EXPECT_TRUE(dir.entries().empty());
        expect_error([&] { out.write(bytes.data(), 2); }, {"after an earlier error"});
        expect_error([&] { out.finish(); }, {"after an earlier error"});
    }
    {
        SafetensorsWriter out(path);
        out.add_tensor("a", SafetensorsDType::U8, {2});
        out.write(bytes.data(), 2);
        expect_error([&] { out.write(bytes.data(), 1); }, {"after the last tensor"});
        EXPECT_TRUE(dir.entries().empty());
    }
    {
        SafetensorsWriter out(path);
        out.add_tensor("a", SafetensorsDType::F32, {2});
        out.add_tensor("b", SafetensorsDType::F32, {2});
        out.write(bytes.data(), 8);
        out.write(bytes.data(), 3);
        expect_error([&] { out.finish(); }, {"tensor 'b' at 3 of its 8 bytes"});
        EXPECT_TRUE(dir.entries().empty());
    }
    {
        SafetensorsWriter out(path);
        out.add_tensor("a", SafetensorsDType::F32, {2});
        out.write(bytes.data(), 8);
        expect_error([&] { out.add_tensor("b", SafetensorsDType::F32, {2}); },
                     {"'b' declared after"});
    }
    {
        SafetensorsWriter out(path);
        out.add_tensor("a", SafetensorsDType::F32, {2});
        out.write(bytes.data(), 0);  // starts the data section
        expect_error([&] { out.add_metadata("k", "v"); }, {"metadata 'k' added after"});
    }
    EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsWriterTest, RefusesBadDeclarations) {
    TempDir dir;
    const std::string path = dir.file("out.safetensors");
    const auto declare = [&](const std::function<void(SafetensorsWriter&)>& f) {
        SafetensorsWriter out(path);
        f(out);
    };
    expect_error(
        [&] {
            declare([](SafetensorsWriter& out) {
                out.add_tensor("a", SafetensorsDType::F32, {1});
                out.add_tensor("a", SafetensorsDType::F16, {1});
            });
        },
        {"'a' declared twice"});
    expect_error(
        [&] {
            declare([](SafetensorsWriter& out) {
                out.add_tensor("__metadata__", SafetensorsDType::F32, {1});
            });
        },
        {"'__metadata__' cannot name a tensor"});
    expect_error(
        [&] {
            declare([](SafetensorsWriter& out) {
                out.add_tensor("n", SafetensorsDType::F32, {2, -3});
            });
        },
        {"'n' has a negative dimension (-3)"});
    expect_error(
        [&] {
            declare([](SafetensorsWriter& out) {
                out.add_tensor("o", SafetensorsDType::F32, {1ll << 32, 1ll << 32});
            });
        },
        {"'o'", "overflows"});
    expect_error(
        [&] {
            declare([](SafetensorsWriter& out) {
                out.add_tensor("o", SafetensorsDType::F64, {1ll << 61});
            });
        },
        {"'o'", "overflows"});
    expect_error(
        [&] {
            declare(
                [](SafetensorsWriter& out) { out.add_tensor("\xff", SafetensorsDType::U8, {1}); });
        },
        {"not valid UTF-8"});
    expect_error([&] { declare([](SafetensorsWriter& out) { out.add_metadata("k", "\xc3"); }); },
                 {"metadata 'k'", "not valid UTF-8"});
    EXPECT_TRUE(dir.entries().empty());
    expect_error([&] { SafetensorsWriter out(dir.file("absent/out.safetensors")); },
                 {"absent/out.safetensors", "cannot create"});
}

TEST(SafetensorsWriterTest, ReplacesTargetOnlyOnFinish) {
    testing::Random random;
    TempDir dir;
    const std::string path = dir.file("target.safetensors");
    write_bytes(path, {'o', 'l', 'd'});
    const std::vector<uint8_t> bytes = random_bytes(random, 4);
    {
        SafetensorsWriter out(path);
        out.add_tensor("t", SafetensorsDType::U8, {4});
        out.write(bytes);
        EXPECT_EQ(read_bytes(path), (std::vector<uint8_t>{'o', 'l', 'd'}));
    }
    EXPECT_EQ(read_bytes(path), (std::vector<uint8_t>{'o', 'l', 'd'}));
    {
        SafetensorsWriter out(path);
        out.add_tensor("t", SafetensorsDType::U8, {4});
        out.write(bytes);
        out.finish();
        expect_error([&] { out.finish(); }, {"after finish()"});
    }
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"target.safetensors"});
    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), file.tensor("t").data));
}

// Files made by the reference library (tests/fuzz/corpus/safetensors/generate.py).
TEST(SafetensorsTest, ReadsReferenceLibraryFiles) {
    const fs::path corpus = corpus_dir();
    if (corpus.empty()) GTEST_SKIP() << "fuzz corpus not found beside the sources";
    const SafetensorsFile file =
        SafetensorsFile::open((corpus / "official-mixed.safetensors").string());
    ASSERT_NE(file.find_metadata("format"), nullptr);
    EXPECT_EQ(*file.find_metadata("format"), "np");
    EXPECT_EQ(file.data_offset() % 8, 0u);
    EXPECT_EQ(file.tensor("a").shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(to_float(file.tensor("a")), (std::vector<float>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(file.tensor("b").dtype, SafetensorsDType::I64);
    EXPECT_EQ(to_float(file.tensor("b")), (std::vector<float>{-3, -2, -1, 0, 1, 2}));
    EXPECT_EQ(file.tensor("c").dtype, SafetensorsDType::F16);
    EXPECT_EQ(to_float(file.tensor("c")),
              (std::vector<float>{0.5f, -2.0f, 65504.0f, fp16_to_fp32(fp32_to_fp16(1e-7f))}));
    EXPECT_EQ(file.tensor("d").shape, (std::vector<int64_t>{2, 2, 2}));
    EXPECT_EQ(to_float(file.tensor("d")), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(file.tensor("e").dtype, SafetensorsDType::BOOL);
    EXPECT_EQ(to_float(file.tensor("e")), (std::vector<float>{1, 0, 1}));
    EXPECT_TRUE(file.tensor("s").shape.empty());
    EXPECT_EQ(to_float(file.tensor("s")), std::vector<float>{3.25f});
    EXPECT_EQ(file.tensor("z").shape, (std::vector<int64_t>{0, 3}));
    EXPECT_EQ(file.tensor("z").n_bytes, 0u);

    EXPECT_TRUE(
        SafetensorsFile::open((corpus / "official-empty.safetensors").string()).tensors().empty());

    const SafetensorsFile f8 = SafetensorsFile::open((corpus / "f8-bf16.safetensors").string());
    EXPECT_EQ(to_float(f8.tensor("e4m3"))[1], f8_e4m3_to_fp32(17));
    EXPECT_EQ(f8.tensor("e5m2").shape, (std::vector<int64_t>{4, 4}));
    const std::vector<float> bf16 = to_float(f8.tensor("bf16"));
    EXPECT_EQ(bf16[0], 1.0f);
    EXPECT_EQ(bf16[1], -2.0f);
    EXPECT_EQ(bf16[2], INFINITY);
    EXPECT_TRUE(std::isnan(bf16[3]));
    EXPECT_EQ(to_float(f8.tensor("i16")), (std::vector<float>{-1, 7}));
    EXPECT_EQ(to_float(f8.tensor("u32")), std::vector<float>{123});
    EXPECT_EQ(to_float(f8.tensor("i8")), std::vector<float>{-128});
}

// Every malformed seed of the fuzz corpus is refused with an Error.
TEST(SafetensorsTest, RejectsMalformedCorpusFiles) {
    const fs::path corpus = corpus_dir();
    if (corpus.empty()) GTEST_SKIP() << "fuzz corpus not found beside the sources";
    int n_bad = 0;
    for (const auto& e : fs::directory_iterator(corpus)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with("bad-")) continue;
        SCOPED_TRACE(name);
        ++n_bad;
        expect_error([&] { (void)SafetensorsFile::open(e.path().string()); }, {name});
    }
    EXPECT_GE(n_bad, 10);
}

}  // namespace
}  // namespace edgeq
