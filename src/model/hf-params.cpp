#include "hf-params.h"

#include <limits>

#include "edgeq/core/error.h"

namespace edgeq::hf {

Params::Params(const nlohmann::json& config, std::string config_path, const Defaults& defaults)
    : merged_(config.is_object() ? config : nlohmann::json::object()),
      path_(std::move(config_path)) {
    if (merged_.contains("text_config") && merged_["text_config"].is_object()) {
        for (const auto& [key, value] : merged_["text_config"].items()) merged_[key] = value;
    }
    for (const auto& [key, value] : defaults) {
        if (!merged_.contains(key) || merged_[key].is_null()) merged_[key] = value;
    }
    // rope_parameters (transformers 5) or rope_scaling (4.x), plus the top-level thetas.
    const nlohmann::json* rope = find({"rope_parameters", "rope_scaling"});
    rope_ = rope != nullptr && rope->is_object() ? *rope : nlohmann::json::object();
    if (!rope_.contains("full_attention") && !rope_.contains("sliding_attention")) {
        if (const nlohmann::json* local =
                find({"rope_local_base_freq", "local_rope_theta", "rope_theta_local"})) {
            rope_["sliding_attention"] = {{"rope_theta", *local}};
        }
        if (!rope_.contains("rope_theta")) {
            if (const nlohmann::json* theta =
                    find({"rope_theta", "global_rope_theta", "rotary_emb_base"})) {
                rope_["rope_theta"] = *theta;
            }
        }
        if (rope_.contains("type") && !rope_.contains("rope_type"))
            rope_["rope_type"] = rope_["type"];
        for (const char* key : {"partial_rotary_factor", "original_max_position_embeddings"}) {
            if (!rope_.contains(key)) {
                if (const nlohmann::json* v = find({key})) rope_[key] = *v;
            }
        }
    }
}

const nlohmann::json* Params::find(std::initializer_list<const char*> keys) const {
    for (const char* key : keys) {
        const auto it = merged_.find(key);
        if (it != merged_.end() && !it->is_null()) return &*it;
    }
    return nullptr;
}

std::optional<int64_t> Params::integer(std::initializer_list<const char*> keys) const {
    const nlohmann::json* v = find(keys);
    if (v == nullptr) return std::nullopt;
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) {
        const double d = v->get<double>();
        if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
    }
    fail("{}: '{}' is {}, expected an integer", path_, *keys.begin(), v->dump());
}

std::optional<double> Params::number(std::initializer_list<const char*> keys) const {
    const nlohmann::json* v = find(keys);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) fail("{}: '{}' is {}, expected a number", path_, *keys.begin(), v->dump());
    return v->get<double>();
}

int64_t Params::require_integer(const char* key) const {
    const auto v = integer({key});
    if (!v) fail("{}: '{}' is missing", path_, key);
    return *v;
}

double Params::require_number(const char* key) const {
    const auto v = number({key});
    if (!v) fail("{}: '{}' is missing", path_, key);
    return *v;
}

void Params::set_default(const char* key, nlohmann::json value) {
    if (!merged_.contains(key) || merged_[key].is_null()) merged_[key] = std::move(value);
}

const nlohmann::json& Params::rope_full() const {
    const auto it = rope_.find("full_attention");
    return it != rope_.end() && it->is_object() ? *it : rope_;
}

void MetadataBuilder::set(const std::string& key, GgufValue value) {
    for (auto& [k, v] : items_) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    items_.emplace_back(key, std::move(value));
}

void MetadataBuilder::set_uint32(const std::string& key, int64_t value, const std::string& source) {
    if (value < 0 || value > std::numeric_limits<uint32_t>::max()) {
        fail("{}: {} does not fit {} (a UINT32)", source, value, key);
    }
    set(key, GgufValue::make_uint32(static_cast<uint32_t>(value)));
}

void MetadataBuilder::append(const GgufMetadata& keys) {
    for (const auto& [k, v] : keys) set(k, v);
}

}  // namespace edgeq::hf
