#include "edgeq/formats/imatrix.h"

#include <cmath>
#include <cstring>
#include <map>

#include "byte-reader.h"
#include "edgeq/core/error.h"
#include "edgeq/core/mapped-file.h"
#include "edgeq/formats/gguf.h"

namespace edgeq {
namespace {

void check_values(const std::string& path, const std::string& name,
                  const std::vector<float>& values) {
    for (size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i]) || values[i] < 0) {
            fail("{}: imatrix entry '{}' value {} is {}, expected a finite value >= 0", path, name,
                 i, values[i]);
        }
    }
}

Imatrix load_gguf(const std::string& path) {
    const GgufFile file = GgufFile::open(path);
    Imatrix result;
    if (const GgufValue* datasets = file.find("imatrix.datasets")) {
        if (datasets->type() == GgufType::array && datasets->element_type() == GgufType::string) {
            for (uint64_t i = 0; i < datasets->array_size(); ++i)
                result.datasets.push_back(datasets->string_at(i));
        }
    }
    if (auto chunks = file.get_uint("imatrix.chunk_count"))
        result.chunk_count = static_cast<int64_t>(*chunks);

    std::map<std::string, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> parts;
    auto ends_with = [](const std::string& s, const std::string& suffix) {
        return s.size() >= suffix.size() &&
               s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    for (const GgufTensorInfo& t : file.tensors()) {
        if (ends_with(t.name, ".in_sum2")) {
            parts[t.name.substr(0, t.name.size() - 8)].first = &t;
        } else if (ends_with(t.name, ".counts")) {
            parts[t.name.substr(0, t.name.size() - 7)].second = &t;
        }
    }
    if (parts.empty())
        fail("{}: a GGUF file with no imatrix entries (<name>.in_sum2 / <name>.counts)", path);
    for (const auto& [name, pair] : parts) {
        const auto [sums, counts] = pair;
        if (sums == nullptr || counts == nullptr) {
            fail("{}: imatrix entry '{}' lacks its {} tensor", path, name,
                 sums == nullptr ? "in_sum2" : "counts");
        }
        if (sums->type != GgmlType::F32 || counts->type != GgmlType::F32) {
            fail("{}: imatrix entry '{}' is not stored as F32", path, name);
        }
        const int64_t n_sums = sums->n_elements();
        const int64_t n_counts = counts->n_elements();
        if (n_counts <= 0 || n_sums % n_counts != 0) {
            fail("{}: imatrix entry '{}' has {} sums for {} counts", path, name, n_sums, n_counts);
        }
        std::vector<float> sum_values(static_cast<size_t>(n_sums));
        std::vector<float> count_values(static_cast<size_t>(n_counts));
        std::memcpy(sum_values.data(), file.tensor_data(*sums), sum_values.size() * sizeof(float));
        std::memcpy(count_values.data(), file.tensor_data(*counts),
                    count_values.size() * sizeof(float));
        const int64_t per_expert = n_sums / n_counts;
        std::vector<float>& values = result.entries[name];
        values.resize(sum_values.size());
        for (int64_t e = 0; e < n_counts; ++e) {
            const float count = std::round(count_values[static_cast<size_t>(e)]);
            for (int64_t i = 0; i < per_expert; ++i) {
                const size_t k = static_cast<size_t>(e * per_expert + i);
                // An expert that saw no tokens carries no information: weight it uniformly.
                values[k] = count > 0 ? sum_values[k] / count : 1.0f;
            }
        }
        check_values(path, name, values);
    }
    return result;
}

Imatrix load_legacy(const std::string& path) {
    const MappedFile file(path);
    ByteReader in(file.bytes(), path);
    Imatrix result;
    result.legacy = true;
    const int32_t n_entries = in.read<int32_t>("the entry count");
    if (n_entries < 1) fail("{}: not an imatrix file (entry count {})", path, n_entries);
    for (int32_t i = 0; i < n_entries; ++i) {
        const uint64_t at = in.offset();
        const int32_t length = in.read<int32_t>("a name length");
        if (length < 0 || static_cast<uint64_t>(length) > in.remaining()) {
            fail("{}: offset {}: entry {} has a name length of {}", path, at, i, length);
        }
        std::string name(static_cast<size_t>(length), '\0');
        in.read_bytes(reinterpret_cast<uint8_t*>(name.data()), static_cast<uint64_t>(length),
                      "an entry name");
        const int32_t n_calls = in.read<int32_t>("a call count");
        const int32_t n_values = in.read<int32_t>("a value count");
        if (n_values < 1 || static_cast<uint64_t>(n_values) > in.remaining() / 4) {
            fail("{}: offset {}: entry '{}' claims {} values", path, at, name, n_values);
        }
        std::vector<float> values(static_cast<size_t>(n_values));
        in.read_bytes(reinterpret_cast<uint8_t*>(values.data()), values.size() * sizeof(float),
                      "entry values");
        // Stored as mean * calls; the quantizer wants the mean.
        if (n_calls > 0) {
            for (float& v : values) v /= static_cast<float>(n_calls);
        }
        check_values(path, name, values);
        if (!result.entries.emplace(std::move(name), std::move(values)).second) {
            fail("{}: offset {}: duplicate imatrix entry", path, at);
        }
    }
    if (in.remaining() >= 4) {
        result.chunk_count = in.read<int32_t>("the chunk count");
        if (in.remaining() >= 4) {
            const int32_t length = in.read<int32_t>("the dataset name length");
            if (length > 0 && static_cast<uint64_t>(length) <= in.remaining()) {
                std::string dataset(static_cast<size_t>(length), '\0');
                in.read_bytes(reinterpret_cast<uint8_t*>(dataset.data()),
                              static_cast<uint64_t>(length), "the dataset name");
                result.datasets.push_back(std::move(dataset));
            }
        }
    }
    return result;
}

}  // namespace

const std::vector<float>* Imatrix::find(const std::string& tensor) const {
    const auto it = entries.find(tensor);
    return it == entries.end() ? nullptr : &it->second;
}

Imatrix load_imatrix(const std::string& path) {
    const MappedFile file(path);
    if (file.size() >= 4 && std::memcmp(file.data(), "GGUF", 4) == 0) return load_gguf(path);
    return load_legacy(path);
}

}  // namespace edgeq
