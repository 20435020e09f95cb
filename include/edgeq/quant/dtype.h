// The dtype table: one row per ggml tensor type, with its name as llama.cpp prints it, its
// GGUF type id, block geometry and the functions that convert it.
//
//   const edgeq::DType& t = edgeq::dtype(edgeq::GgmlType::Q4_K);
//   t.block_size == 256, t.type_size == 144, t.name == "Q4_K"
//   t.to_float(blocks, floats, 512);                    // two blocks back to floats
//   t.quantize_row(floats, blocks, 512, importance);    // importance may be null
//
// Types that ggml defines but edgeq does not convert (IQ2_XXS, ...) have rows with null
// functions, so that files holding them can still be read and inspected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "edgeq/core/tensor.h"

namespace edgeq {

// Converts n values (a multiple of the block size) of this type to float.
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
// Reference quantizer: for F32/F16/BF16, the legacy types (Q4_0 ... Q8_0) and the ternary types,
// plain rounding bit-exact with ggml's reference quantizers and with gguf-py; for the k-quants
// and IQ4, the scale search without importance (quantize_row with null importance).
using FromFloatRefFn = void (*)(const float* src, void* dst, int64_t n);
// Best-effort quantizer of one row of n values. `importance` (n non-negative per-column
// weights, from an imatrix) may be null; the quantizer then minimises the plain squared
// error, otherwise the importance-weighted squared error.
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n, const float* importance);

struct DType {
    GgmlType type;
    std::string_view name;
    int64_t block_size;  // values per block
    size_t type_size;    // bytes per block
    bool quantized;      // a block format (as opposed to F32, F16, BF16, I8...)
    ToFloatFn to_float;
    FromFloatRefFn from_float_ref;
    QuantizeRowFn quantize_row;
};

// The row for a GGUF type id, or null if ggml defines no type with that id.
const DType* find_dtype(uint32_t id);
// The row for a type; every GgmlType has one.
const DType& dtype(GgmlType type);
// The row whose name matches (case-insensitive: "q4_k", "Q4_K"), or null.
const DType* find_dtype(std::string_view name);
// Every row, in id order.
const std::vector<DType>& all_dtypes();

// Bytes of a row of n values; n must be a multiple of the block size.
size_t row_size(GgmlType type, int64_t n);

}  // namespace edgeq
