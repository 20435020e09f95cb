// Importance matrices (llama.cpp's imatrix files): per input column of every matrix, the mean
// squared activation over a calibration text. The quantizers weight their error by it.
//
// Two file formats are read: the GGUF one (tensors "<name>.in_sum2" with the sums of squares
// and "<name>.counts" with the number of activations summed, per expert) and the legacy .dat
// one (int32 entry count; per entry: int32 name length, name, int32 call count, int32 value
// count, float values already divided by the count and multiplied by the call count; then an
// optional int32 chunk count and dataset name).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
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

// The raw statistics of one weight, as collected: for each of its n_mat matrices (experts; 1
// for a dense weight) the sum over input rows of each column's squared activation, and the
// number of rows summed.
struct ImatrixStats {
    int64_t n_in = 0;
    std::vector<double> in_sum2;  // n_mat x n_in, one matrix after the other
    std::vector<int64_t> counts;  // n_mat
};
// By weight name; looked up by string_view without allocating.
using ImatrixStatsMap = std::map<std::string, ImatrixStats, std::less<>>;

// What an imatrix GGUF file says besides its tensors.
struct ImatrixInfo {
    std::vector<std::string> datasets;  // imatrix.datasets: the calibration files' paths
    uint32_t chunk_count = 0;           // imatrix.chunk_count
    uint32_t chunk_size = 0;            // imatrix.chunk_size: tokens per chunk (-c)
};

// Writes llama.cpp's GGUF imatrix format: general.type = "imatrix", the imatrix.* keys, and
// per weight (in name order) "<name>.in_sum2" (F32, n_in x n_mat) and "<name>.counts" (F32,
// 1 x n_mat), the trailing n_mat left out when it is 1 (as ggml writes them). The file appears at
// `path` only when complete. Throws an Error for an entry whose sizes disagree.
void save_imatrix(const std::string& path, const ImatrixStatsMap& stats, const ImatrixInfo& info);

}  // namespace edgeq
