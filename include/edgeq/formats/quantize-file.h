// Quantizing a GGUF model file to a mix, streaming tensor by tensor: the input stays mapped,
// each tensor is converted in slabs of rows and written out before the next is read, so peak
// memory is a few slabs whatever the model's size.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/formats/imatrix.h"
#include "edgeq/quant/mix.h"

namespace edgeq {

struct QuantizeFileOptions {
    const QuantMix* mix = nullptr;
    MixOptions mix_options;
    const Imatrix* imatrix = nullptr;
    bool dry_run = false;
    bool verbose = false;  // a line per tensor on stderr
};

struct TensorOutcome {
    std::string name;
    std::vector<int64_t> shape;
    GgmlType from;
    GgmlType to;
    uint64_t bytes_in;
    uint64_t bytes_out;
    bool used_imatrix;
};

struct QuantizeReport {
    std::vector<TensorOutcome> tensors;
    uint64_t bytes_in = 0;  // tensor data only
    uint64_t bytes_out = 0;
    int64_t n_elements = 0;
    uint64_t file_size_out = 0;  // the whole output file (0 for a dry run)
    int n_fallbacks = 0;
    int n_requantized = 0;

    double bits_per_weight() const {
        return n_elements > 0
                   ? 8.0 * static_cast<double>(bytes_out) / static_cast<double>(n_elements)
                   : 0;
    }
};

// The facts the mix rules need, from a GGUF file's metadata.
ModelFacts model_facts(const GgufFile& file);
ModelFacts model_facts(const GgufMetadata& metadata);

// The importance rows an imatrix holds for a tensor (one row of shape[0] values per expert), or
// null if it has none. An entry whose size does not fit the tensor is an Error, except for the
// token embedding (llama.cpp's imatrix tool may record it with another size), which is ignored.
const float* importance_for(const Imatrix* imatrix, const std::string& name,
                            const std::vector<int64_t>& shape);

// Converts a tensor to `to` slab by slab (a bounded number of rows at a time) and hands each
// slab's bytes, in order, to `sink`. `importance` holds one row of n_per_row weights per
// expert (shape[2] of a 3-D tensor), or is null.
void stream_quantized(const TensorView& src, GgmlType to, const float* importance, ThreadPool& pool,
                      const std::function<void(std::span<const uint8_t>)>& sink);

// Quantizes `input` into a new file at `output_path` (written atomically; with dry_run, nothing
// is written). Throws an Error if the output is the input file.
QuantizeReport quantize_file(const GgufFile& input, const std::string& output_path,
                             const QuantizeFileOptions& options, ThreadPool& pool);

}  // namespace edgeq
