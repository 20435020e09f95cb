#include "edgeq/model/gguf-export.h"

#include <algorithm>
#include <cstring>
#include <future>

#include "edgeq/core/error.h"
#include "edgeq/core/half.h"
#include "edgeq/core/mapped-file.h"
#include "edgeq/core/progress.h"
#include "edgeq/formats/gguf-writer.h"
#include "edgeq/formats/quantize-file.h"
#include "edgeq/quant/quantize.h"

namespace edgeq {
namespace {

constexpr int64_t k_slab_values = int64_t{4} << 20;  // values converted per output slab

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_plain(GgmlType t) {
    return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || t == GgmlType::Q8_0;
}

// The type llama.cpp's converter gives a tensor for output type `type` (F32, F16, BF16, Q8_0).
GgmlType converter_type(const ModelTensor& t, GgmlType type) {
    int n_dims = static_cast<int>(t.shape.size());
    while (n_dims > 1 && t.shape[static_cast<size_t>(n_dims - 1)] == 1) --n_dims;
    if (n_dims <= 1 || ends_with(t.name, "_norm.weight") || !ends_with(t.name, ".weight"))
        return GgmlType::F32;
    if (type == GgmlType::Q8_0 && t.shape[0] % 32 != 0) return GgmlType::F16;
    return type;
}

struct Plan {
    GgmlType type;
    bool via_f16;  // quantize the values the F16 file would hold
    const float* importance;
};

std::vector<Plan> plan_types(const Model& model, const ExportOptions& options) {
    std::vector<Plan> plans;
    const QuantMix& mix = *options.mix;
    if (is_plain(mix.default_type)) {
        for (const ModelTensor& t : model.tensors)
            plans.push_back({converter_type(t, mix.default_type), false, nullptr});
        return plans;
    }
    // A mix: the rules apply to the F16 file the converter would write.
    std::vector<TensorIn> intermediate;
    for (const ModelTensor& t : model.tensors)
        intermediate.push_back({t.name, converter_type(t, GgmlType::F16), t.shape});
    MixOptions mix_options = options.mix_options;
    mix_options.has_imatrix = options.imatrix != nullptr;
    const std::vector<TensorChoice> choices =
        choose_types(mix, model_facts(model.metadata), intermediate, mix_options);
    for (size_t i = 0; i < choices.size(); ++i) {
        const TensorChoice& c = choices[i];
        const bool changed = c.type != intermediate[i].type;
        const float* importance =
            changed && c.quantizable
                ? importance_for(options.imatrix, model.tensors[i].name, model.tensors[i].shape)
                : nullptr;
        if (c.needs_imatrix && importance == nullptr) {
            fail("tensor '{}': {} in a {} file needs an importance matrix (--imatrix)",
                 model.tensors[i].name, dtype(c.type).name, mix.name);
        }
        plans.push_back({c.type, intermediate[i].type == GgmlType::F16, importance});
    }
    return plans;
}

// Adds `add` to a row as the source's own arithmetic would: F16 sources round the sum to F16
// (the converter adds in the checkpoint's dtype when it is F16); others add in float32.
void add_constant(float* row, int64_t n, float add, GgmlType source) {
    for (int64_t i = 0; i < n; ++i) {
        const float sum = row[i] + add;
        row[i] = source == GgmlType::F16 ? fp16_to_fp32(fp32_to_fp16(sum)) : sum;
    }
}

// Converts tensors slab by slab into one of two output buffers while a second thread writes
// the other one to the file, so reading, converting and writing overlap.
class SlabPipeline {
  public:
    explicit SlabPipeline(GgufWriter& writer) : writer_(writer) {}
    SlabPipeline(const SlabPipeline&) = delete;
    SlabPipeline& operator=(const SlabPipeline&) = delete;
    ~SlabPipeline() {
        if (pending_.valid()) pending_.wait();
    }

    // A buffer of at least `n` bytes that no write in flight is reading.
    uint8_t* buffer(size_t n) {
        std::vector<uint8_t>& b = buffers_[next_];
        if (b.size() < n) b.resize(n);
        return b.data();
    }
    // Queues the first `n` bytes of the buffer last returned, after the writes already queued.
    void write(size_t n) {
        drain();
        const uint8_t* data = buffers_[next_].data();
        pending_ = std::async(std::launch::async, [this, data, n] { writer_.write({data, n}); });
        next_ ^= 1;
    }
    // Waits for the queued writes; rethrows their error.
    void drain() {
        if (pending_.valid()) pending_.get();
    }
    GgufWriter& writer() { return writer_; }

  private:
    GgufWriter& writer_;
    std::vector<uint8_t> buffers_[2];
    int next_ = 0;
    std::future<void> pending_;
};

// Row buffers of one thread: a few rows as floats, small enough to stay in cache.
struct RowScratch {
    std::vector<std::vector<float>> per_thread;
    float* get(int thread, size_t n) {
        std::vector<float>& v = per_thread[static_cast<size_t>(thread)];
        if (v.size() < n) v.resize(n);
        return v.data();
    }
};

void write_tensor(const ModelTensor& t, const Plan& plan, SlabPipeline& pipe, ThreadPool& pool,
                  RowScratch& scratch) {
    const int64_t cols = t.shape[0];
    const int64_t rows = cols == 0 ? 0 : t.n_elements() / cols;
    const GgmlType src_type = t.source.type;
    const size_t src_row = row_size(src_type, cols);
    const uint8_t* src = t.source_data();
    if (!t.transformed() && plan.type == src_type && !(plan.via_f16 && src_type != GgmlType::F16)) {
        pipe.drain();
        constexpr uint64_t k_chunk = uint64_t{64} << 20;
        const uint64_t n_bytes = static_cast<uint64_t>(rows) * src_row;
        for (uint64_t done = 0; done < n_bytes; done += k_chunk) {
            pipe.writer().write(
                std::span<const uint8_t>(src + done, std::min(k_chunk, n_bytes - done)));
        }
        return;
    }
    const size_t dst_row = row_size(plan.type, cols);
    const int64_t slab_rows =
        std::max<int64_t>(1, std::min<int64_t>(rows, k_slab_values / std::max<int64_t>(1, cols)));
    // Rows converted together by one thread: about 16k values.
    const int64_t step = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols));
    for (int64_t row = 0; row < rows; row += slab_rows) {
        const int64_t n = std::min(slab_rows, rows - row);
        uint8_t* out = pipe.buffer(static_cast<size_t>(n) * dst_row);
        pool.parallel_for(n, step, [&](int64_t begin, int64_t end, int thread) {
            float* floats = scratch.get(thread, static_cast<size_t>((end - begin) * cols));
            for (int64_t r = begin; r < end; ++r) {
                const int64_t out_row = row + r;
                const int64_t in_row =
                    t.row_map.empty() ? out_row : t.row_map[static_cast<size_t>(out_row)];
                float* dst = floats + (r - begin) * cols;
                to_float(src_type, src + static_cast<size_t>(in_row) * src_row, dst, cols);
                if (t.add != 0) add_constant(dst, cols, t.add, src_type);
                if (plan.via_f16) {
                    for (int64_t i = 0; i < cols; ++i) dst[i] = fp16_to_fp32(fp32_to_fp16(dst[i]));
                }
            }
            quantize_rows(plan.type, floats, out + static_cast<size_t>(begin) * dst_row,
                          end - begin, cols, plan.importance, nullptr, t.name, row + begin);
        });
        pipe.write(static_cast<size_t>(n) * dst_row);
    }
}

}  // namespace

uint32_t export_file_type(const ExportOptions& options) {
    return static_cast<uint32_t>(options.mix->file_type);
}

ExportReport write_gguf(const Model& model, const std::string& path, const ExportOptions& options,
                        ThreadPool& pool) {
    if (options.mix == nullptr) fail("export: no output type given");
    for (const ModelTensor& t : model.tensors) {
        const GgmlType s = t.source.type;
        if (t.shape.empty() || (s != GgmlType::F32 && s != GgmlType::F16 && s != GgmlType::BF16)) {
            fail("tensor '{}': its source is not F32, F16 or BF16", t.name);
        }
        if (t.shape[0] != (t.source.shape.empty() ? 1 : t.source.shape[0])) {
            fail("internal: tensor '{}' changes its row length", t.name);
        }
    }
    const std::vector<Plan> plans = plan_types(model, options);
    GgufWriter writer(path);
    for (const auto& [key, value] : model.metadata) writer.set(key, value);
    ExportReport report;
    uint64_t total_source = 0;
    for (size_t i = 0; i < model.tensors.size(); ++i) {
        const ModelTensor& t = model.tensors[i];
        writer.add_tensor(t.name, plans[i].type, t.shape);
        report.tensors.push_back({t.name, plans[i].type, writer.tensors().back().n_bytes});
        report.bytes_out += writer.tensors().back().n_bytes;
        report.n_elements += t.n_elements();
        total_source += static_cast<uint64_t>(t.n_elements()) * dtype(t.source.type).type_size;
    }
    writer.write_header();
    Progress progress("convert", total_source);
    SlabPipeline pipe(writer);
    RowScratch scratch{std::vector<std::vector<float>>(static_cast<size_t>(pool.size()))};
    for (size_t i = 0; i < model.tensors.size(); ++i) {
        const ModelTensor& t = model.tensors[i];
        progress.set_detail(t.name);
        write_tensor(t, plans[i], pipe, pool, scratch);
        // The checkpoint's pages are not needed again: keep resident memory to a few tensors.
        if (t.owned.empty()) release_mapped_range(t.source.data, t.source.n_bytes);
        progress.advance(static_cast<uint64_t>(t.n_elements()) * dtype(t.source.type).type_size);
    }
    pipe.drain();
    progress.finish();
    writer.finish();
    report.file_size = writer.bytes_written();
    return report;
}

}  // namespace edgeq
