// Importance matrices (llama.cpp's imatrix files): per input column of every matrix, the mean
// squared activation over a calibration text. The quantizers weight their error by it.
//
// Two file formats are read: the GGUF one (tensors "<name>.in_sum2" with the sums of squares
// and "<name>.counts" with the number of activations summed, per expert) and the legacy .dat
// one (int32 entry count; per entry: int32 name length, name, int32 call count, int32 value
// count, float values already divided by the count and multiplied by the call count; then an
// optional int32 chunk count and dataset name).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace edgeq {

struct Imatrix {
    // Tensor name -> importance per column; a 3-D (expert) tensor's entry holds one row of
    // columns per expert, one after the other.
    std::unordered_map<std::string, std::vector<float>> entries;
    std::vector<std::string> datasets;
    int64_t chunk_count = 0;
    bool legacy = false;

    const std::vector<float>* find(const std::string& tensor) const;
};

// Reads either format (told apart by the GGUF magic). Throws an Error naming the file and the
// problem for anything malformed, and for values that are negative, NaN or infinite.
Imatrix load_imatrix(const std::string& path);

}  // namespace edgeq
