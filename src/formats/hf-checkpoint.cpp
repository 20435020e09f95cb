#include "edgeq/formats/hf-checkpoint.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <system_error>

#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "edgeq/core/mapped-file.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_config = "config.json";
constexpr std::string_view k_single = "model.safetensors";
constexpr std::string_view k_index = "model.safetensors.index.json";
constexpr std::string_view k_extension = ".safetensors";

bool is_regular_file(const std::string& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec);
}

std::string join(const std::string& dir, std::string_view name) {
    return (fs::path(dir) / fs::path(name)).string();
}

// nlohmann's message without its "[json.exception...] parse error at line 1, column 7: "
// prefix, with bytes that would garble a terminal replaced.
std::string json_reason(const std::exception& e) {
    std::string what = e.what();
    const size_t column = what.find("column ");
    if (column != std::string::npos) {
        const size_t colon = what.find(": ", column);
        if (colon != std::string::npos) what = what.substr(colon + 2);
    } else if (const size_t bracket = what.find("] "); bracket != std::string::npos) {
        what = what.substr(bracket + 2);
    }
    for (char& c : what) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) c = '?';
    }
    return what;
}

// A name from a file as an error message may show it: control characters escaped.
std::string printable(std::string_view name) {
    std::string shown;
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        shown += u < 0x20 || u == 0x7f ? fmt::format("\\x{:02x}", u) : std::string(1, c);
    }
    return shown;
}

// Parses a JSON file that must hold an object.
nlohmann::json read_json_object(const std::string& path) {
    const MappedFile file(path);
    nlohmann::json value;
    try {
        const char* begin = reinterpret_cast<const char*>(file.data());
        value = nlohmann::json::parse(begin, begin + file.size());
    } catch (const nlohmann::json::parse_error& e) {
        fail("{}: offset {}: not valid JSON: {}", path, e.byte > 0 ? e.byte - 1 : 0,
             json_reason(e));
    } catch (const nlohmann::json::exception& e) {
        fail("{}: not valid JSON: {}", path, json_reason(e));
    }
    if (!value.is_object()) fail("{}: is a JSON {}, expected an object", path, value.type_name());
    return value;
}

// A file name inside the directory, as an index may give it: no paths, no "." or "..".
bool plain_file_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." &&
           name.find_first_of("/\\") == std::string::npos && name.find('\0') == std::string::npos;
}

struct ShardName {
    std::string prefix;
    std::string total_text;
    int part;
    int total;
};

// Parses "PREFIX-00001-of-00003.safetensors".
std::optional<ShardName> parse_shard_name(std::string_view name) {
    if (!name.ends_with(k_extension)) return std::nullopt;
    const std::string_view stem = name.substr(0, name.size() - k_extension.size());
    const size_t of = stem.rfind("-of-");
    if (of == std::string_view::npos) return std::nullopt;
    const size_t dash = stem.rfind('-', of == 0 ? 0 : of - 1);
    if (dash == std::string_view::npos || dash >= of) return std::nullopt;
    const std::string_view part_text = stem.substr(dash + 1, of - dash - 1);
    const std::string_view total_text = stem.substr(of + 4);
    const auto all_digits = [](std::string_view s) {
        return !s.empty() && s.size() <= 6 &&
               std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!all_digits(part_text) || !all_digits(total_text)) return std::nullopt;
    ShardName shard{std::string(stem.substr(0, dash)), std::string(total_text), 0, 0};
    std::from_chars(part_text.data(), part_text.data() + part_text.size(), shard.part);
    std::from_chars(total_text.data(), total_text.data() + total_text.size(), shard.total);
    return shard;
}

// The weights files of a directory without model.safetensors or an index: a complete set
// of numbered shards, or an Error listing what is there.
std::vector<std::string> unindexed_shards(const std::string& dir) {
    std::vector<std::string> found;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.ends_with(k_extension) && is_regular_file(it->path().string())) {
            found.push_back(name);
        }
    }
    if (ec) fail("{}: cannot list the directory: {}", dir, ec.message());
    std::sort(found.begin(), found.end());
    if (found.empty()) {
        fail("{}: no weights: expected {} or {} (and its shards)", dir, k_single, k_index);
    }

    const auto listing = [&] {
        std::string s;
        for (size_t i = 0; i < found.size() && i < 8; ++i) s += (i ? ", " : "") + found[i];
        if (found.size() > 8) s += fmt::format(" and {} more", found.size() - 8);
        return s;
    };
    std::optional<ShardName> first = parse_shard_name(found[0]);
    std::set<int> parts;
    bool complete = first.has_value() && first->total == static_cast<int>(found.size());
    for (size_t i = 0; complete && i < found.size(); ++i) {
        const std::optional<ShardName> shard = parse_shard_name(found[i]);
        complete = shard && shard->prefix == first->prefix &&
                   shard->total_text == first->total_text && shard->part >= 1 &&
                   shard->part <= shard->total && parts.insert(shard->part).second;
    }
    if (!complete) {
        fail(
            "{}: no {} or {}, and the *.safetensors files here are not one complete set of "
            "shards (found: {})",
            dir, k_single, k_index, listing());
    }
    log_warn("{}: no {}; reading the {} shards {}-*-of-{}.safetensors", dir, k_index, found.size(),
             first->prefix, first->total_text);
    return found;
}

}  // namespace

HfCheckpoint HfCheckpoint::open(const std::string& dir) {
    HfCheckpoint ckpt;
    ckpt.dir_ = dir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        fail("{}: not a directory{}", dir, fs::exists(dir, ec) ? "" : " (it does not exist)");
    }

    const std::string config_path = join(dir, k_config);
    if (!is_regular_file(config_path)) {
        fail("{}: no {} (not a Hugging Face checkpoint directory?)", dir, k_config);
    }
    ckpt.config_ = read_json_object(config_path);
    if (const auto it = ckpt.config_.find("architectures");
        it != ckpt.config_.end() && !it->is_null()) {
        if (!it->is_array() || (!it->empty() && !(*it)[0].is_string())) {
            fail("{}: \"architectures\" must be an array of strings", config_path);
        }
    }

    const std::string single_path = join(dir, k_single);
    const std::string index_path = join(dir, k_index);
    if (is_regular_file(single_path)) {
        ckpt.load_shards({std::string(k_single)});
        ckpt.index_tensors();
    } else if (is_regular_file(index_path)) {
        ckpt.indexed_ = true;
        const nlohmann::json index = read_json_object(index_path);
        if (const auto it = index.find("metadata"); it != index.end() && !it->is_null()) {
            if (!it->is_object()) {
                fail("{}: \"metadata\" is a JSON {}, expected an object", index_path,
                     it->type_name());
            }
            ckpt.index_metadata_ = *it;
        }
        const auto map_it = index.find("weight_map");
        if (map_it == index.end()) fail("{}: no \"weight_map\"", index_path);
        if (!map_it->is_object()) {
            fail("{}: \"weight_map\" is a JSON {}, expected an object", index_path,
                 map_it->type_name());
        }
        std::map<std::string, std::string> weight_map;
        std::map<std::string, std::string> example_tensor;  // shard -> a tensor it should hold
        for (const auto& [tensor, shard] : map_it->items()) {
            if (!shard.is_string()) {
                fail("{}: \"weight_map\" entry '{}' is a JSON {}, expected a file name", index_path,
                     printable(tensor), shard.type_name());
            }
            const std::string& file_name = shard.get_ref<const std::string&>();
            if (!plain_file_name(file_name)) {
                fail("{}: tensor '{}': shard '{}' is not a file name in the checkpoint directory",
                     index_path, printable(tensor), printable(file_name));
            }
            weight_map.emplace(tensor, file_name);
            example_tensor.emplace(file_name, tensor);
        }
        if (weight_map.empty()) fail("{}: \"weight_map\" lists no tensors", index_path);
        std::vector<std::string> file_names;
        for (const auto& [file_name, tensor] : example_tensor) {
            if (!is_regular_file(join(dir, file_name))) {
                fail("{}: shard '{}' (listed for tensor '{}') is missing from {}", index_path,
                     printable(file_name), printable(tensor), dir);
            }
            file_names.push_back(file_name);
        }
        ckpt.load_shards(file_names);
        ckpt.index_tensors();
        ckpt.check_weight_map(index_path, weight_map);
    } else {
        ckpt.load_shards(unindexed_shards(dir));
        ckpt.index_tensors();
    }
    return ckpt;
}

void HfCheckpoint::load_shards(const std::vector<std::string>& file_names) {
    shards_.reserve(file_names.size());
    for (const std::string& name : file_names)
        shards_.push_back(SafetensorsFile::open(join(dir_, name)));
}

// Called once shards_ is complete: the pointers into it stay valid from here on, moves of
// the checkpoint included (a vector's move keeps its storage).
void HfCheckpoint::index_tensors() {
    for (const SafetensorsFile& shard : shards_) {
        for (const SafetensorsTensor& t : shard.tensors()) {
            const auto [it, inserted] = by_name_.emplace(t.name, tensors_.size());
            if (!inserted) {
                fail("{}: tensor '{}' is in two shards, {} and {}", dir_, printable(t.name),
                     tensors_[it->second].shard->path(), shard.path());
            }
            tensors_.push_back({&t, &shard});
            n_parameters_ += t.n_elements;
        }
    }
}

void HfCheckpoint::check_weight_map(const std::string& index_path,
                                    const std::map<std::string, std::string>& weight_map) const {
    for (const auto& [name, file_name] : weight_map) {
        const HfTensor* t = find_tensor(name);
        const std::string expected = join(dir_, file_name);
        if (t == nullptr) {
            fail("{}: tensor '{}' is listed in shard '{}', which does not hold it", index_path,
                 printable(name), printable(file_name));
        }
        if (t->shard->path() != expected) {
            fail("{}: tensor '{}' is listed in shard '{}' but is in {}", index_path,
                 printable(name), printable(file_name), t->shard->path());
        }
    }
    if (weight_map.size() < tensors_.size()) {
        log_warn("{}: {} tensors in the shards are not listed in the index; reading them too",
                 index_path, tensors_.size() - weight_map.size());
    }
}

std::string HfCheckpoint::architecture() const {
    const auto it = config_.find("architectures");
    if (it == config_.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) return "";
    return (*it)[0].get<std::string>();
}

const HfTensor* HfCheckpoint::find_tensor(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& HfCheckpoint::tensor(std::string_view name) const {
    const HfTensor* t = find_tensor(name);
    if (t == nullptr) fail("{}: no tensor '{}'", dir_, printable(name));
    return *t->tensor;
}

}  // namespace edgeq
