// The GGUF imatrix format that llama-imatrix writes (and llama-quantize reads): raw sums of
// squares and row counts, stored as F32, so that files from several runs can be added up.
#include <cmath>
#include <cstring>
#include <span>

#include "edgeq/core/error.h"
#include "edgeq/formats/gguf-writer.h"
#include "edgeq/formats/imatrix.h"

namespace edgeq {
namespace {

void write_floats(GgufWriter& out, const std::vector<float>& values) {
    out.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                       values.size() * sizeof(float)));
}

}  // namespace

void save_imatrix(const std::string& path, const ImatrixStatsMap& stats, const ImatrixInfo& info) {
    if (stats.empty()) fail("{}: no imatrix entries to write", path);
    for (const auto& [name, s] : stats) {
        const size_t n_mat = s.counts.size();
        if (s.n_in <= 0 || n_mat == 0 || s.in_sum2.size() != static_cast<size_t>(s.n_in) * n_mat)
            fail("{}: imatrix entry '{}' has {} sums for {} matrices of {} columns", path, name,
                 s.in_sum2.size(), n_mat, s.n_in);
        for (const double v : s.in_sum2) {
            if (!std::isfinite(v) || v < 0)
                fail("{}: imatrix entry '{}' has a sum of squares of {}", path, name, v);
        }
    }

    GgufWriter out(path);
    out.set("general.type", GgufValue::make_string("imatrix"));
    out.set("imatrix.datasets", GgufValue::make_string_array(info.datasets));
    out.set("imatrix.chunk_count", GgufValue::make_uint32(info.chunk_count));
    out.set("imatrix.chunk_size", GgufValue::make_uint32(info.chunk_size));
    // std::map iterates in byte order of the names: llama.cpp's order too. As ggml writes a
    // tensor, a trailing dimension of 1 is left out: a dense weight's entries are 1-D.
    for (const auto& [name, s] : stats) {
        const auto n_mat = static_cast<int64_t>(s.counts.size());
        if (n_mat == 1) {
            out.add_tensor(name + ".in_sum2", GgmlType::F32, {s.n_in});
            out.add_tensor(name + ".counts", GgmlType::F32, {1});
        } else {
            out.add_tensor(name + ".in_sum2", GgmlType::F32, {s.n_in, n_mat});
            out.add_tensor(name + ".counts", GgmlType::F32, {1, n_mat});
        }
    }
    out.write_header();
    std::vector<float> buffer;
    for (const auto& [name, s] : stats) {
        buffer.assign(s.in_sum2.begin(), s.in_sum2.end());
        write_floats(out, buffer);
        buffer.assign(s.counts.begin(), s.counts.end());
        write_floats(out, buffer);
    }
    out.finish();
}

}  // namespace edgeq
