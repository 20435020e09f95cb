// Hyperparameters of a Hugging Face checkpoint as llama.cpp's converter sees them: config.json
// with text_config merged over it (multimodal configs keep the language model's settings there)
// and the family's transformers defaults filled in for absent fields.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edgeq/formats/gguf-value.h"

namespace edgeq::hf {

class Params {
  public:
    using Defaults = std::vector<std::pair<std::string, nlohmann::json>>;
    Params(const nlohmann::json& config, std::string config_path, const Defaults& defaults);

    // The value of the first of `keys` that is present and not null, or null.
    const nlohmann::json* find(std::initializer_list<const char*> keys) const;
    bool has(const char* key) const { return find({key}) != nullptr; }

    // Typed reads; each throws an Error naming config.json and the field if it has another type.
    std::optional<int64_t> integer(std::initializer_list<const char*> keys) const;
    std::optional<double> number(std::initializer_list<const char*> keys) const;
    // As above, but the field must be present.
    int64_t require_integer(const char* key) const;
    double require_number(const char* key) const;

    // rope_parameters as the converter normalises it (rope_scaling folded in, the global and
    // local thetas and original context copied in); may be an empty object.
    const nlohmann::json& rope() const { return rope_; }
    // The full-attention rope settings: rope()["full_attention"] if present, else rope().
    const nlohmann::json& rope_full() const;

    // Fills `key` if it is absent or null (defaults that depend on other fields).
    void set_default(const char* key, nlohmann::json value);

    const nlohmann::json& json() const { return merged_; }
    const std::string& path() const { return path_; }

  private:
    nlohmann::json merged_;
    nlohmann::json rope_;
    std::string path_;
};

// An ordered metadata list where setting an existing key replaces its value in place, as the
// converter's writer does (a key keeps the position it was first written at).
class MetadataBuilder {
  public:
    void set(const std::string& key, GgufValue value);
    void set_uint32(const std::string& key, int64_t value, const std::string& source);
    void set_float32(const std::string& key, double value) {
        set(key, GgufValue::make_float32(static_cast<float>(value)));
    }
    void set_string(const std::string& key, std::string value) {
        set(key, GgufValue::make_string(std::move(value)));
    }
    void append(const GgufMetadata& keys);
    GgufMetadata& items() { return items_; }

  private:
    GgufMetadata items_;
};

}  // namespace edgeq::hf
