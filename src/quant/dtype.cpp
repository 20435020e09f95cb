#include "edgeq/quant/dtype.h"

#include <algorithm>
#include <cctype>

#include "edgeq/core/error.h"
#include "types.h"

namespace edgeq {
namespace {

using namespace edgeq::quant;

#define EDGEQ_FORMAT(t) &dequantize_row_##t, &quantize_row_##t##_ref, &quantize_row_##t

// clang-format off
const std::vector<DType> k_dtypes = {
    {GgmlType::F32,     "F32",     1,   4,   false, EDGEQ_FORMAT(f32)},
    {GgmlType::F16,     "F16",     1,   2,   false, EDGEQ_FORMAT(f16)},
    {GgmlType::Q4_0,    "Q4_0",    32,  18,  true,  EDGEQ_FORMAT(q4_0)},
    {GgmlType::Q4_1,    "Q4_1",    32,  20,  true,  EDGEQ_FORMAT(q4_1)},
    {GgmlType::Q5_0,    "Q5_0",    32,  22,  true,  EDGEQ_FORMAT(q5_0)},
    {GgmlType::Q5_1,    "Q5_1",    32,  24,  true,  EDGEQ_FORMAT(q5_1)},
    {GgmlType::Q8_0,    "Q8_0",    32,  34,  true,  EDGEQ_FORMAT(q8_0)},
    {GgmlType::Q8_1,    "Q8_1",    32,  36,  true,  nullptr, nullptr, nullptr},
    {GgmlType::Q2_K,    "Q2_K",    256, 84,  true,  EDGEQ_FORMAT(q2_k)},
    {GgmlType::Q3_K,    "Q3_K",    256, 110, true,  EDGEQ_FORMAT(q3_k)},
    {GgmlType::Q4_K,    "Q4_K",    256, 144, true,  EDGEQ_FORMAT(q4_k)},
    {GgmlType::Q5_K,    "Q5_K",    256, 176, true,  EDGEQ_FORMAT(q5_k)},
    {GgmlType::Q6_K,    "Q6_K",    256, 210, true,  EDGEQ_FORMAT(q6_k)},
    {GgmlType::Q8_K,    "Q8_K",    256, 292, true,  EDGEQ_FORMAT(q8_k)},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66,  true,  nullptr, nullptr, nullptr},
    {GgmlType::IQ2_XS,  "IQ2_XS",  256, 74,  true,  nullptr, nullptr, nullptr},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98,  true,  nullptr, nullptr, nullptr},
    {GgmlType::IQ1_S,   "IQ1_S",   256, 50,  true,  nullptr, nullptr, nullptr},
    {GgmlType::IQ4_NL,  "IQ4_NL",  32,  18,  true,  EDGEQ_FORMAT(iq4_nl)},
    {GgmlType::IQ3_S,   "IQ3_S",   256, 110, true,  nullptr, nullptr, nullptr},
    {GgmlType::IQ2_S,   "IQ2_S",   256, 82,  true,  nullptr, nullptr, nullptr},
    {GgmlType::IQ4_XS,  "IQ4_XS",  256, 136, true,  EDGEQ_FORMAT(iq4_xs)},
    {GgmlType::I8,      "I8",      1,   1,   false, nullptr, nullptr, nullptr},
    {GgmlType::I16,     "I16",     1,   2,   false, nullptr, nullptr, nullptr},
    {GgmlType::I32,     "I32",     1,   4,   false, nullptr, nullptr, nullptr},
    {GgmlType::I64,     "I64",     1,   8,   false, nullptr, nullptr, nullptr},
    {GgmlType::F64,     "F64",     1,   8,   false, nullptr, nullptr, nullptr},
    {GgmlType::IQ1_M,   "IQ1_M",   256, 56,  true,  nullptr, nullptr, nullptr},
    {GgmlType::BF16,    "BF16",    1,   2,   false, EDGEQ_FORMAT(bf16)},
    {GgmlType::TQ1_0,   "TQ1_0",   256, 54,  true,  EDGEQ_FORMAT(tq1_0)},
    {GgmlType::TQ2_0,   "TQ2_0",   256, 66,  true,  EDGEQ_FORMAT(tq2_0)},
    {GgmlType::MXFP4,   "MXFP4",   32,  17,  true,  nullptr, nullptr, nullptr},
    {GgmlType::NVFP4,   "NVFP4",   64,  36,  true,  nullptr, nullptr, nullptr},
    {GgmlType::Q1_0,    "Q1_0",    128, 18,  true,  nullptr, nullptr, nullptr},
    {GgmlType::Q2_0,    "Q2_0",    64,  18,  true,  nullptr, nullptr, nullptr},
};
// clang-format on

#undef EDGEQ_FORMAT

constexpr uint32_t k_max_id = 64;

// Index into k_dtypes by type id (-1: no such type).
const std::vector<int>& index_by_id() {
    static const std::vector<int> index = [] {
        std::vector<int> v(k_max_id, -1);
        for (size_t i = 0; i < k_dtypes.size(); ++i)
            v[static_cast<uint32_t>(k_dtypes[i].type)] = static_cast<int>(i);
        return v;
    }();
    return index;
}

}  // namespace

const DType* find_dtype(uint32_t id) {
    if (id >= k_max_id) return nullptr;
    const int i = index_by_id()[id];
    return i < 0 ? nullptr : &k_dtypes[static_cast<size_t>(i)];
}

const DType& dtype(GgmlType type) {
    const DType* t = find_dtype(static_cast<uint32_t>(type));
    if (t == nullptr)
        fail("internal: GGML type id {} has no dtype row", static_cast<uint32_t>(type));
    return *t;
}

const DType* find_dtype(std::string_view name) {
    for (const DType& t : k_dtypes) {
        if (t.name.size() == name.size() &&
            std::equal(name.begin(), name.end(), t.name.begin(), [](char a, char b) {
                return std::toupper(static_cast<unsigned char>(a)) == b;
            })) {
            return &t;
        }
    }
    return nullptr;
}

const std::vector<DType>& all_dtypes() {
    return k_dtypes;
}

size_t row_size(GgmlType type, int64_t n) {
    const DType& t = dtype(type);
    return static_cast<size_t>(n / t.block_size) * t.type_size;
}

}  // namespace edgeq
