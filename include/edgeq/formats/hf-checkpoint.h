// A Hugging Face checkpoint directory: config.json and safetensors weights, either in one
// file (model.safetensors) or sharded (model.safetensors.index.json and the shards it names).
//
//   HfCheckpoint ckpt = HfCheckpoint::open("TinyLlama-1.1B");
//   ckpt.architecture();                          // "LlamaForCausalLM"
//   ckpt.config().value("hidden_size", 0);        // config.json, as parsed
//   for (const HfTensor& t : ckpt.tensors())      // shard by shard, in file order
//       use(t.tensor->name, to_float(*t.tensor));
//   ckpt.tensor("model.norm.weight");             // lookup by name, or an Error
//
// Which weights are read, in order of precedence (as transformers does):
//   1. model.safetensors;
//   2. model.safetensors.index.json: every shard its "weight_map" names (plain file names in
//      the directory) is opened, and each tensor it lists must be in the shard it names;
//      other *.safetensors files in the directory are not opened;
//   3. no index, but a complete set of shards PREFIX-00001-of-0000N.safetensors .. N of N,
//      one prefix, and no other *.safetensors file: those shards (an index lost in a copy).
// Anything else (no weights, a lone file of another name such as adapter_model.safetensors,
// an incomplete or mixed set of shards) is an Error listing what was found. In every case a
// tensor name held by two shards is an Error, and the tensors are the union of the shards'
// (a tensor in a shard that the index does not list is kept, with a warning).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/formats/safetensors.h"

namespace edgeq {

struct HfTensor {
    const SafetensorsTensor* tensor;
    const SafetensorsFile* shard;  // the file that holds it
};

class HfCheckpoint {
  public:
    // Reads config.json and maps every weights file of `dir`; see above for what it rejects.
    static HfCheckpoint open(const std::string& dir);

    HfCheckpoint(HfCheckpoint&&) = default;
    HfCheckpoint& operator=(HfCheckpoint&&) = default;
    HfCheckpoint(const HfCheckpoint&) = delete;
    HfCheckpoint& operator=(const HfCheckpoint&) = delete;

    const std::string& dir() const { return dir_; }
    // config.json, a JSON object.
    const nlohmann::json& config() const { return config_; }
    // config "architectures"[0] ("LlamaForCausalLM"), or "" if the config names none.
    std::string architecture() const;
    // The index's "metadata" object; null if there is no index or it has none.
    const nlohmann::json& index_metadata() const { return index_metadata_; }
    // True if the weights came from model.safetensors.index.json.
    bool indexed() const { return indexed_; }

    // The weights files, ordered by file name.
    const std::vector<SafetensorsFile>& shards() const { return shards_; }
    // Every tensor: shard by shard in shards() order, then by file offset within a shard.
    const std::vector<HfTensor>& tensors() const { return tensors_; }
    const HfTensor* find_tensor(std::string_view name) const;
    // The tensor called `name`, or an Error naming the directory and the tensor.
    const SafetensorsTensor& tensor(std::string_view name) const;
    // The sum of every tensor's element count.
    int64_t n_parameters() const { return n_parameters_; }

  private:
    HfCheckpoint() = default;
    void load_shards(const std::vector<std::string>& file_names);
    void index_tensors();
    void check_weight_map(const std::string& index_path,
                          const std::map<std::string, std::string>& weight_map) const;

    std::string dir_;
    nlohmann::json config_;
    nlohmann::json index_metadata_;
    bool indexed_ = false;
    std::vector<SafetensorsFile> shards_;
    std::vector<HfTensor> tensors_;
    std::map<std::string, size_t, std::less<>> by_name_;  // name -> position in tensors_
    int64_t n_parameters_ = 0;
};

}  // namespace edgeq
