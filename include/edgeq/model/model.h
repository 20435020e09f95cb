// The canonical model: what every importer produces and every exporter consumes.
//
// Metadata uses GGUF's vocabulary (general.architecture, <arch>.block_count, tokenizer.ggml.*)
// and tensors GGUF's names and shapes (shape[0] is the contiguous dimension). A tensor does not
// hold its values: it points at them where they already are (a mapped checkpoint) and says how
// to derive its own from them, row by row, so that an exporter can stream a model of any size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgeq/core/tensor.h"
#include "edgeq/formats/gguf-value.h"

namespace edgeq {

struct ModelTensor {
    std::string name;            // GGUF name: "blk.0.attn_q.weight"
    std::vector<int64_t> shape;  // GGUF order; the rows are every dimension after the first

    // Where the values come from: an F32, F16 or BF16 tensor in GGUF order. Its rows may
    // outnumber this tensor's (a tensor can take the first rows of its source).
    TensorView source;
    // Output row r reads source row row_map[r]; empty means row r.
    std::vector<int64_t> row_map;
    // Added to every value, rounded to the source's type as the source's own arithmetic would
    // (Gemma's norms store weight - 1).
    float add = 0;
    // Values computed by the importer (rope frequency tables, permuted vectors); when set,
    // `source` views these.
    std::vector<float> owned;

    bool transformed() const { return !row_map.empty() || add != 0; }
    // The source values: `owned` when the importer computed them, else the viewed bytes.
    const uint8_t* source_data() const {
        return owned.empty() ? source.data : reinterpret_cast<const uint8_t*>(owned.data());
    }
    int64_t n_elements() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
};

struct Model {
    GgufMetadata metadata;             // in the order to write it
    std::vector<ModelTensor> tensors;  // in the order to write them

    const GgufValue* find(std::string_view key) const;
    std::string architecture() const;
};

}  // namespace edgeq
