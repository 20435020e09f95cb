#include "edgeq/formats/quantize-file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "edgeq/core/progress.h"
#include "edgeq/formats/gguf-writer.h"
#include "edgeq/quant/quantize.h"

namespace edgeq {
namespace {

constexpr int64_t k_slab_values = int64_t{8} << 20;  // floats converted at a time (32 MiB)
constexpr uint64_t k_copy_chunk = uint64_t{64} << 20;

// The first element of an integer or integer-array value (per-layer head counts are arrays).
int64_t first_int(const GgufValue& value) {
    if (value.type() == GgufType::array) {
        if (value.array_size() == 0) return 0;
        return value.element_at(0).to_int();
    }
    return value.to_int();
}

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {};
    struct stat sb {};
    if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool is_float_type(GgmlType t) {
    return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

}  // namespace

void stream_quantized(const TensorView& src, GgmlType to, const float* importance, ThreadPool& pool,
                      const std::function<void(std::span<const uint8_t>)>& sink) {
    const int64_t n_per_row = src.shape.empty() ? 1 : src.shape[0];
    const int64_t n_rows = src.n_rows();
    // Expert tensors (3-D) have one importance row per expert.
    const int64_t rows_per_expert =
        src.shape.size() >= 3 ? src.shape[1] : std::max<int64_t>(1, n_rows);
    const size_t src_row = row_size(src.type, n_per_row);
    const size_t dst_row = row_size(to, n_per_row);
    const int64_t slab_rows = std::max<int64_t>(
        1, std::min<int64_t>(n_rows, k_slab_values / std::max<int64_t>(1, n_per_row)));
    std::vector<float> floats(static_cast<size_t>(slab_rows * n_per_row));
    std::vector<uint8_t> out(static_cast<size_t>(slab_rows) * dst_row);
    const std::string name(src.name);
    for (int64_t row = 0; row < n_rows;) {
        // A slab never crosses an expert boundary, so it has one importance row.
        const int64_t expert = row / rows_per_expert;
        const int64_t rows =
            std::min({slab_rows, n_rows - row, (expert + 1) * rows_per_expert - row});
        const uint8_t* slab = src.data + static_cast<size_t>(row) * src_row;
        if (src.type == GgmlType::F32) {
            std::memcpy(floats.data(), slab, static_cast<size_t>(rows * n_per_row) * sizeof(float));
        } else {
            pool.parallel_for(rows, std::max<int64_t>(1, 16384 / n_per_row),
                              [&](int64_t begin, int64_t end, int) {
                                  to_float(src.type, slab + static_cast<size_t>(begin) * src_row,
                                           floats.data() + begin * n_per_row,
                                           (end - begin) * n_per_row);
                              });
        }
        const float* imp = importance != nullptr ? importance + expert * n_per_row : nullptr;
        quantize_rows(to, floats.data(), out.data(), rows, n_per_row, imp, &pool, name, row);
        sink(std::span<const uint8_t>(out.data(), static_cast<size_t>(rows) * dst_row));
        row += rows;
    }
}

ModelFacts model_facts(const GgufMetadata& metadata) {
    auto find = [&](const std::string& key) -> const GgufValue* {
        for (const auto& [k, v] : metadata) {
            if (k == key) return &v;
        }
        return nullptr;
    };
    ModelFacts facts;
    if (const GgufValue* arch = find("general.architecture");
        arch != nullptr && arch->type() == GgufType::string) {
        facts.architecture = arch->to_string();
    }
    const std::string& a = facts.architecture;
    if (const GgufValue* v = find(a + ".block_count")) facts.n_layer = first_int(*v);
    if (const GgufValue* v = find(a + ".attention.head_count")) facts.n_head = first_int(*v);
    facts.n_head_kv = facts.n_head;
    if (const GgufValue* v = find(a + ".attention.head_count_kv")) facts.n_head_kv = first_int(*v);
    if (const GgufValue* v = find(a + ".expert_count")) facts.n_expert = first_int(*v);
    return facts;
}

ModelFacts model_facts(const GgufFile& file) {
    return model_facts(file.metadata());
}

const float* importance_for(const Imatrix* imatrix, const std::string& name,
                            const std::vector<int64_t>& shape) {
    if (imatrix == nullptr || shape.empty()) return nullptr;
    const std::vector<float>* entry = imatrix->find(name);
    if (entry == nullptr) return nullptr;
    const int64_t experts = shape.size() >= 3 ? shape[2] : 1;
    if (static_cast<int64_t>(entry->size()) != shape[0] * experts) {
        if (name == "token_embd.weight") return nullptr;
        fail("imatrix entry for '{}' has {} values, the tensor needs {}", name, entry->size(),
             shape[0] * experts);
    }
    return entry->data();
}

QuantizeReport quantize_file(const GgufFile& input, const std::string& output_path,
                             const QuantizeFileOptions& options, ThreadPool& pool) {
    if (options.mix == nullptr) fail("quantize: no type given");
    if (!options.dry_run && (output_path == input.path() || same_file(output_path, input.path()))) {
        fail("{}: refusing to overwrite the input file", output_path);
    }
    const QuantMix& mix = *options.mix;
    const ModelFacts facts = model_facts(input);
    MixOptions mix_options = options.mix_options;
    mix_options.has_imatrix = options.imatrix != nullptr;

    std::vector<TensorIn> tensors_in;
    for (const GgufTensorInfo& t : input.tensors()) tensors_in.push_back({t.name, t.type, t.shape});
    const std::vector<TensorChoice> choices = choose_types(mix, facts, tensors_in, mix_options);

    QuantizeReport report;
    for (size_t i = 0; i < input.tensors().size(); ++i) {
        const GgufTensorInfo& t = input.tensors()[i];
        const TensorChoice& c = choices[i];
        const uint64_t out_bytes =
            static_cast<uint64_t>(t.n_rows()) * row_size(c.type, t.shape.empty() ? 1 : t.shape[0]);
        const float* imp = c.type != t.type && c.quantizable
                               ? importance_for(options.imatrix, t.name, t.shape)
                               : nullptr;
        if (c.needs_imatrix && imp == nullptr) {
            fail("tensor '{}': {} in a {} file needs an importance matrix (--imatrix)", t.name,
                 dtype(c.type).name, mix.name);
        }
        if (c.type != t.type && !can_dequantize(t.type)) {
            fail("tensor '{}': edgeq cannot read {} data to requantize it", t.name,
                 dtype(t.type).name);
        }
        if (c.type != t.type && !can_quantize(c.type)) {
            fail("tensor '{}': edgeq cannot write {}", t.name, dtype(c.type).name);
        }
        report.tensors.push_back({t.name, t.shape, t.type, c.type, t.n_bytes,
                                  c.type == t.type ? t.n_bytes : out_bytes, imp != nullptr});
        report.bytes_in += t.n_bytes;
        report.bytes_out += report.tensors.back().bytes_out;
        report.n_elements += t.n_elements();
        report.n_fallbacks += c.fell_back ? 1 : 0;
        report.n_requantized +=
            (c.type != t.type && !is_float_type(t.type) && !is_float_type(c.type)) ? 1 : 0;
    }
    if (report.n_requantized > 0) {
        log_warn(
            "{} tensors are already quantized and will be requantized; quantizing from the "
            "original F16/BF16/F32 "
            "weights gives better quality",
            report.n_requantized);
    }
    if (options.dry_run) return report;

    GgufWriter writer(output_path, static_cast<uint32_t>(input.alignment()));
    for (const auto& [key, value] : input.metadata()) {
        if (key == "split.no" || key == "split.count" || key == "split.tensors.count") continue;
        writer.set(key, value);
    }
    writer.set("general.quantization_version", GgufValue::make_uint32(2));
    writer.set("general.file_type", GgufValue::make_uint32(static_cast<uint32_t>(mix.file_type)));
    for (size_t i = 0; i < input.tensors().size(); ++i) {
        const GgufTensorInfo& t = input.tensors()[i];
        writer.add_tensor(t.name, choices[i].type, t.shape);
    }
    writer.write_header();

    Progress progress("quantize", report.bytes_in);
    for (size_t i = 0; i < input.tensors().size(); ++i) {
        const GgufTensorInfo& t = input.tensors()[i];
        const TensorOutcome& outcome = report.tensors[i];
        const uint8_t* src = input.tensor_data(t);
        progress.set_detail(t.name);
        if (outcome.to == t.type) {
            for (uint64_t done = 0; done < t.n_bytes; done += k_copy_chunk) {
                const uint64_t n = std::min(k_copy_chunk, t.n_bytes - done);
                writer.write(std::span<const uint8_t>(src + done, n));
            }
        } else {
            const float* imp =
                outcome.used_imatrix ? importance_for(options.imatrix, t.name, t.shape) : nullptr;
            stream_quantized(input.view(t), outcome.to, imp, pool,
                             [&](std::span<const uint8_t> bytes) { writer.write(bytes); });
        }
        input.release(t);
        progress.advance(t.n_bytes);
        if (options.verbose) {
            log_info("[{:4}/{:4}] {:<40} {:>6} -> {:<6} {:8.2f} MiB -> {:8.2f} MiB{}", i + 1,
                     input.tensors().size(), t.name, dtype(t.type).name, dtype(outcome.to).name,
                     outcome.bytes_in / 1048576.0, outcome.bytes_out / 1048576.0,
                     outcome.used_imatrix ? " (imatrix)" : "");
        }
    }
    progress.finish();
    writer.finish();
    report.file_size_out = writer.bytes_written();
    return report;
}

}  // namespace edgeq
