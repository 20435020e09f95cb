// Converting whole tensors between types, in parallel over rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "edgeq/core/thread-pool.h"
#include "edgeq/quant/dtype.h"

namespace edgeq {

// Quantizes n_rows rows of n_per_row floats to `type` (any type with a quantizer), writing
// n_rows * row_size(type, n_per_row) bytes to dst. `importance` (n_per_row weights, may be
// null) applies to every row. Rows are spread over `pool` (null: this thread). Throws an
// Error if n_per_row is not a multiple of the type's block size, if the type has no
// quantizer, or if src holds a NaN, an infinity or, for F16 and the block formats (whose
// scales are F16), a value beyond F16's range (naming `what`, the row and the column; rows are
// numbered from `first_row`, the index of src's first row in the whole tensor).
void quantize_rows(GgmlType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                   const float* importance, ThreadPool* pool, const std::string& what = "tensor",
                   int64_t first_row = 0);

// Converts n values of `type` (a multiple of its block size) to float; throws an Error if the
// type cannot be converted.
void to_float(GgmlType type, const void* src, float* dst, int64_t n);

// True if `type` can be written by quantize_rows and read by to_float.
bool can_quantize(GgmlType type);
bool can_dequantize(GgmlType type);

}  // namespace edgeq
