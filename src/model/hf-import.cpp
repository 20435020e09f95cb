#include "edgeq/model/hf-import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "edgeq/core/error.h"
#include "edgeq/formats/hf-tokenizer.h"
#include "hf-import.h"
#include "hf-provenance.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;

const std::vector<const hf::Family*>& families() {
    static const std::vector<const hf::Family*> all = {&hf::k_llama, &hf::k_mistral, &hf::k_qwen2,
                                                       &hf::k_qwen3, &hf::k_gemma2,  &hf::k_gemma3,
                                                       &hf::k_phi3};
    return all;
}

bool starts_with(const std::string& s, std::string_view prefix) {
    return s.rfind(prefix, 0) == 0;
}
bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

// Tensors of other modalities (vision towers, projectors, audio) that a text conversion drops.
bool is_other_modality(const std::string& name) {
    static const char* const k_prefixes[] = {
        "mlp",     "vit.",       "vpm.",           "siglip2.",          "conformer.",
        "merger.", "resampler.", "sound_encoder.", "sound_projection.", "speech_embeddings."};
    static const char* const k_parts[] = {"visual.",         "vision.",
                                          "audio.",          "talker.",
                                          "vision_",         "audio_",
                                          "token2wav.",      "code2wav.",
                                          "projector.",      "pre_mm_projector_norm",
                                          "image_newline",   "view_seperator",
                                          "patch_embed",     "patch_embedding",
                                          "patch_merger.",   "patch_merge_mlp.",
                                          "model.connector."};
    for (const char* p : k_prefixes) {
        if (starts_with(name, p)) return true;
    }
    for (const char* p : k_parts) {
        if (contains(name, p)) return true;
    }
    return false;
}

// Buffers of the attention code that checkpoints sometimes store; never weights.
bool is_buffer(const std::string& name) {
    return ends_with(name, ".attention.masked_bias") || ends_with(name, ".attention.bias") ||
           ends_with(name, ".rotary_emb.inv_freq");
}

std::string without_all(std::string name, std::string_view part) {
    for (size_t at = name.find(part); at != std::string::npos; at = name.find(part, at))
        name.erase(at, part.size());
    return name;
}

// A checkpoint tensor as the source of a model tensor: GGUF order is row-major reversed.
ModelTensor checkpoint_tensor(const SafetensorsTensor& t, const SafetensorsFile& shard) {
    GgmlType type;
    switch (t.dtype) {
        case SafetensorsDType::F32:
            type = GgmlType::F32;
            break;
        case SafetensorsDType::F16:
            type = GgmlType::F16;
            break;
        case SafetensorsDType::BF16:
            type = GgmlType::BF16;
            break;
        default:
            fail("{}: tensor '{}' is stored as {}; edgeq converts F32, F16 and BF16 weights",
                 shard.path(), t.name, safetensors_dtype_name(t.dtype));
    }
    ModelTensor m;
    m.shape.assign(t.shape.rbegin(), t.shape.rend());
    if (m.shape.empty()) m.shape = {1};
    m.source = TensorView{t.name, type, m.shape, t.data, t.n_bytes};
    return m;
}

// general.sampling.* from generation_config.json, in the converter's order.
void add_sampling_keys(const std::string& dir, GgufMetadata& out) {
    const fs::path path = fs::path(dir) / "generation_config.json";
    if (!fs::is_regular_file(path)) return;
    nlohmann::json g;
    try {
        std::ifstream in(path);
        g = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
        return;  // the converter ignores a generation config it cannot read
    }
    if (!g.is_object()) return;
    auto number = [&](const char* key) -> const nlohmann::json* {
        const auto it = g.find(key);
        return it != g.end() && it->is_number() ? &*it : nullptr;
    };
    if (const auto it = g.find("sequence"); it != g.end() && it->is_string()) {
        out.emplace_back("general.sampling.sequence",
                         GgufValue::make_string(it->get<std::string>()));
    }
    const std::pair<const char*, const char*> k_keys[] = {{"top_k", "top_k"},
                                                          {"top_p", "top_p"},
                                                          {"min_p", "min_p"},
                                                          {"xtc_probability", "xtc_probability"},
                                                          {"xtc_threshold", "xtc_threshold"},
                                                          {"temperature", "temp"},
                                                          {"penalty_last_n", "penalty_last_n"},
                                                          {"penalty_repeat", "penalty_repeat"},
                                                          {"mirostat", "mirostat"},
                                                          {"mirostat_tau", "mirostat_tau"},
                                                          {"mirostat_eta", "mirostat_eta"}};
    for (const auto& [field, key] : k_keys) {
        const nlohmann::json* v = number(field);
        if (v == nullptr && std::string_view(field) == "penalty_repeat")
            v = number("repetition_penalty");
        if (v == nullptr) continue;
        const std::string name = std::string("general.sampling.") + key;
        const bool integer = std::string_view(key) == "top_k" ||
                             std::string_view(key) == "penalty_last_n" ||
                             std::string_view(key) == "mirostat";
        out.emplace_back(name, integer ? GgufValue::make_int32(v->get<int32_t>())
                                       : GgufValue::make_float32(v->get<float>()));
    }
}

}  // namespace

std::vector<std::string> supported_hf_architectures() {
    std::vector<std::string> names;
    for (const hf::Family* f : families()) {
        for (std::string_view a : f->hf_architectures) names.emplace_back(a);
    }
    return names;
}

Model import_hf(const HfCheckpoint& checkpoint, const HfImportOptions& options) {
    const std::string config_path = (fs::path(checkpoint.dir()) / "config.json").string();
    const nlohmann::json& config = checkpoint.config();
    std::string hf_architecture = checkpoint.architecture();
    if (config.contains("text_config") && config["text_config"].is_object()) {
        const nlohmann::json& text = config["text_config"];
        if (text.contains("architectures") && text["architectures"].is_array() &&
            !text["architectures"].empty() && text["architectures"][0].is_string()) {
            hf_architecture = text["architectures"][0].get<std::string>();
        }
    }
    const hf::Family* family = nullptr;
    for (const hf::Family* f : families()) {
        if (std::find(f->hf_architectures.begin(), f->hf_architectures.end(), hf_architecture) !=
            f->hf_architectures.end()) {
            family = f;
        }
    }
    if (family == nullptr) {
        std::string known;
        for (const std::string& a : supported_hf_architectures())
            known += (known.empty() ? "" : ", ") + a;
        fail("{}: architecture '{}' is not supported (supported: {})", config_path,
             hf_architecture.empty() ? std::string("(none given)") : hf_architecture, known);
    }
    const std::string arch(family->arch);
    hf::Import import{checkpoint,
                      hf::Params(config, config_path, family->defaults),
                      hf_architecture,
                      options.file_type,
                      0,
                      {},
                      {},
                      {}};

    HfTokenizerInput tokenizer_input{checkpoint.dir(), config, arch,
                                     import.params.integer({"vocab_size"}).value_or(0)};
    const GgufMetadata tokenizer = hf_tokenizer_metadata(tokenizer_input);
    for (const auto& [key, value] : tokenizer) {
        if (key == "tokenizer.ggml.tokens")
            import.n_tokens = static_cast<int64_t>(value.array_size());
    }

    family->write_hparams(import);
    if (family->generate != nullptr) family->generate(import);

    // Checkpoint tensors: shard by shard (in file name order), each shard's sorted by name.
    Model model;
    model.tensors = std::move(import.generated);
    std::set<std::string> written;
    for (const ModelTensor& t : model.tensors) written.insert(t.name);
    for (const SafetensorsFile& shard : checkpoint.shards()) {
        std::vector<const SafetensorsTensor*> sorted;
        for (const SafetensorsTensor& t : shard.tensors()) sorted.push_back(&t);
        std::sort(sorted.begin(), sorted.end(),
                  [](const SafetensorsTensor* a, const SafetensorsTensor* b) {
                      return a->name < b->name;
                  });
        for (const SafetensorsTensor* t : sorted) {
            if (is_other_modality(t->name)) continue;
            const std::string name = without_all(t->name, "language_model.");
            if (is_buffer(name)) continue;
            ModelTensor tensor = checkpoint_tensor(*t, shard);
            const std::optional<std::string> gguf_name = family->map_tensor(import, name, tensor);
            if (!gguf_name) continue;
            tensor.name = *gguf_name;
            if (!written.insert(tensor.name).second) {
                fail("{}: two tensors become '{}' (the second is '{}')", shard.path(), tensor.name,
                     t->name);
            }
            model.tensors.push_back(std::move(tensor));
        }
    }
    if (model.tensors.empty()) fail("{}: no tensors to convert", checkpoint.dir());

    int64_t n_parameters = 0;
    for (const ModelTensor& t : model.tensors) n_parameters += t.n_elements();

    hf::MetadataBuilder metadata;
    metadata.set_string("general.architecture", arch);
    metadata.append(import.leading);
    metadata.set_string("general.type", "model");
    GgufMetadata sampling;
    add_sampling_keys(checkpoint.dir(), sampling);
    metadata.append(sampling);
    metadata.append(hf::provenance_metadata(checkpoint.dir(), config, n_parameters));
    metadata.append(import.hparams.items());
    metadata.set("general.quantization_version", GgufValue::make_uint32(2));
    metadata.append(tokenizer);
    model.metadata = std::move(metadata.items());
    return model;
}

}  // namespace edgeq
