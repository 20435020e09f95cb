// The dtype table against the GGUF/ggml facts, written out here: every type id ggml defines,
// its name as llama.cpp and gguf-py print it, values per block and bytes per block; the ids
// ggml leaves unused; lookup by name; row_size.
#include "edgeq/quant/dtype.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <set>
#include <string>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

struct Expected {
    uint32_t id;
    const char* name;
    int64_t block_size;
    size_t type_size;
    bool quantized;
};

// ggml's type ids (ggml.h enum ggml_type) and block geometry (ggml-common.h).
constexpr Expected k_expected[] = {
    {0, "F32", 1, 4, false},        {1, "F16", 1, 2, false},        {2, "Q4_0", 32, 18, true},
    {3, "Q4_1", 32, 20, true},      {6, "Q5_0", 32, 22, true},      {7, "Q5_1", 32, 24, true},
    {8, "Q8_0", 32, 34, true},      {9, "Q8_1", 32, 36, true},      {10, "Q2_K", 256, 84, true},
    {11, "Q3_K", 256, 110, true},   {12, "Q4_K", 256, 144, true},   {13, "Q5_K", 256, 176, true},
    {14, "Q6_K", 256, 210, true},   {15, "Q8_K", 256, 292, true},   {16, "IQ2_XXS", 256, 66, true},
    {17, "IQ2_XS", 256, 74, true},  {18, "IQ3_XXS", 256, 98, true}, {19, "IQ1_S", 256, 50, true},
    {20, "IQ4_NL", 32, 18, true},   {21, "IQ3_S", 256, 110, true},  {22, "IQ2_S", 256, 82, true},
    {23, "IQ4_XS", 256, 136, true}, {24, "I8", 1, 1, false},        {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},       {27, "I64", 1, 8, false},       {28, "F64", 1, 8, false},
    {29, "IQ1_M", 256, 56, true},   {30, "BF16", 1, 2, false},      {34, "TQ1_0", 256, 54, true},
    {35, "TQ2_0", 256, 66, true},   {39, "MXFP4", 32, 17, true},    {40, "NVFP4", 64, 36, true},
    {41, "Q1_0", 128, 18, true},    {42, "Q2_0", 64, 18, true},
};

// The formats edgeq converts both ways (DESIGN.md, quant layer).
const std::set<std::string> k_converted = {
    "F32",  "F16",  "BF16", "Q4_0", "Q4_1", "Q5_0",  "Q5_1",  "Q8_0",   "Q2_K",
    "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "TQ1_0", "TQ2_0", "IQ4_NL", "IQ4_XS",
};

const Expected* expected_for(uint32_t id) {
    for (const Expected& e : k_expected) {
        if (e.id == id) return &e;
    }
    return nullptr;
}

TEST(DType, EveryGgmlTypeHasItsRow) {
    for (const Expected& e : k_expected) {
        SCOPED_TRACE(e.name);
        const DType* t = find_dtype(e.id);
        ASSERT_NE(t, nullptr);
        EXPECT_EQ(static_cast<uint32_t>(t->type), e.id);
        EXPECT_EQ(t->name, e.name);
        EXPECT_EQ(t->block_size, e.block_size);
        EXPECT_EQ(t->type_size, e.type_size);
        EXPECT_EQ(t->quantized, e.quantized);
        EXPECT_EQ(&dtype(static_cast<GgmlType>(e.id)), t);
    }
}

TEST(DType, UnusedIdsHaveNoRow) {
    for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u}) {
        EXPECT_EQ(find_dtype(id), nullptr) << "id " << id;
    }
    for (uint32_t id = 43; id < 300; ++id) EXPECT_EQ(find_dtype(id), nullptr) << "id " << id;
    for (uint32_t id : {1000u, 65536u, 0x7fffffffu, 0xffffffffu}) {
        EXPECT_EQ(find_dtype(id), nullptr) << "id " << id;
    }
    for (uint32_t id = 0; id < 43; ++id) {
        EXPECT_EQ(find_dtype(id) != nullptr, expected_for(id) != nullptr) << "id " << id;
    }
}

TEST(DType, AllDtypesInIdOrderOnceEach) {
    const auto& all = all_dtypes();
    ASSERT_EQ(all.size(), std::size(k_expected));
    for (size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(static_cast<uint32_t>(all[i].type), k_expected[i].id);
        EXPECT_EQ(find_dtype(static_cast<uint32_t>(all[i].type)), &all[i]);
    }
}

TEST(DType, ConvertedFormatsHaveTheirFunctions) {
    for (const DType& t : all_dtypes()) {
        SCOPED_TRACE(std::string(t.name));
        const bool converted = k_converted.count(std::string(t.name)) > 0;
        EXPECT_EQ(t.to_float != nullptr, converted);
        EXPECT_EQ(t.from_float_ref != nullptr, converted);
        EXPECT_EQ(t.quantize_row != nullptr, converted);
    }
}

std::string with_case(std::string_view name, int pattern) {
    std::string s(name);
    for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        const bool lower = pattern == 0 || (pattern == 2 && i % 2 == 1);
        s[i] = static_cast<char>(lower ? std::tolower(c) : std::toupper(c));
    }
    return s;
}

TEST(DType, LookupByNameIgnoresCase) {
    for (const Expected& e : k_expected) {
        for (int pattern = 0; pattern < 3; ++pattern) {
            const std::string name = with_case(e.name, pattern);
            const DType* t = find_dtype(std::string_view(name));
            ASSERT_NE(t, nullptr) << name;
            EXPECT_EQ(static_cast<uint32_t>(t->type), e.id) << name;
        }
    }
    EXPECT_EQ(find_dtype(std::string_view("q4_k"))->type, GgmlType::Q4_K);
    EXPECT_EQ(find_dtype(std::string_view("Iq4_Xs"))->type, GgmlType::IQ4_XS);
    for (const char* bad : {"", "Q4", "Q4_K_M", "Q4_0 ", " Q4_0", "Q4-0", "FP16"}) {
        EXPECT_EQ(find_dtype(std::string_view(bad)), nullptr) << "'" << bad << "'";
    }
    EXPECT_EQ(find_dtype(std::string_view("Q4_0\0", 5)), nullptr);
    EXPECT_EQ(find_dtype(std::string_view("F1")), nullptr);
    EXPECT_EQ(find_dtype(std::string_view("F326")), nullptr);
}

TEST(DType, RowSize) {
    for (const Expected& e : k_expected) {
        SCOPED_TRACE(e.name);
        const auto type = static_cast<GgmlType>(e.id);
        for (int64_t n_blocks : {0, 1, 2, 3, 16, 43}) {
            EXPECT_EQ(row_size(type, n_blocks * e.block_size),
                      static_cast<size_t>(n_blocks) * e.type_size);
        }
    }
    EXPECT_EQ(row_size(GgmlType::Q4_K, 4096), 16u * 144u);
    EXPECT_EQ(row_size(GgmlType::Q4_0, 4096), 128u * 18u);
    EXPECT_EQ(row_size(GgmlType::F16, 11008), 22016u);
    EXPECT_EQ(row_size(GgmlType::TQ1_0, 2048), 8u * 54u);
    EXPECT_EQ(row_size(GgmlType::Q6_K, 4096LL * 4096), 65536u * 210u);
}

}  // namespace
}  // namespace edgeq
