// Writing a canonical model as GGUF, streaming: each tensor is read from its source, transformed
// and converted a slab of rows at a time and written before the next, so memory stays bounded
// by a few slabs however large the model.
//
// The output type of each tensor follows llama.cpp's converter for the plain types (F32, F16,
// BF16, Q8_0: vectors and norms stay F32, Q8_0 falls back to F16 for rows it cannot hold) and
// edgeq quantize's mix rules for the mixes, applied to the F16 file the converter would write,
// so that converting to a mix in one pass gives exactly `edgeq quantize` of that F16 file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/imatrix.h"
#include "edgeq/model/model.h"
#include "edgeq/quant/mix.h"

namespace edgeq {

struct ExportOptions {
    const QuantMix* mix = nullptr;  // F32, F16, BF16, Q8_0 or any mix (Q4_K_M...)
    MixOptions mix_options;
    const Imatrix* imatrix = nullptr;
};

struct ExportedTensor {
    std::string name;
    GgmlType type;
    uint64_t n_bytes;
};

struct ExportReport {
    std::vector<ExportedTensor> tensors;
    uint64_t bytes_out = 0;
    int64_t n_elements = 0;
    uint64_t file_size = 0;
};

// general.file_type for an export with these options.
uint32_t export_file_type(const ExportOptions& options);

// Writes `model` to `path` (atomically). The model's metadata must already carry
// general.file_type = export_file_type(options).
ExportReport write_gguf(const Model& model, const std::string& path, const ExportOptions& options,
                        ThreadPool& pool);

}  // namespace edgeq
