// LlamaForCausalLM (Llama 2, Llama 3.x, TinyLlama, SmolLM) and MistralForCausalLM -> "llama".
#include <algorithm>
#include <cmath>

#include "edgeq/core/error.h"
#include "edgeq/quant/quantize.h"
#include "hf-import.h"

namespace edgeq::hf {
namespace {

const std::vector<std::pair<std::string_view, std::string_view>> k_layer_parts = {
    {"input_layernorm", "attn_norm"},    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},      {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"}};

// Fields transformers computes from others when config.json leaves them out.
void complete_config(Params& p) {
    const int64_t heads = p.require_integer("num_attention_heads");
    if (heads <= 0) fail("{}: num_attention_heads is {}", p.path(), heads);
    p.set_default("num_key_value_heads", heads);
    p.set_default("head_dim", p.require_integer("hidden_size") / heads);
}

void write_hparams(Import& import) {
    complete_config(import.params);
    write_common_hparams(import, "llama");
    const Params& p = import.params;
    import.hparams.set_uint32("llama.vocab_size", p.require_integer("vocab_size"), p.path());
    import.hparams.set_uint32("llama.rope.dimension_count", p.require_integer("head_dim"),
                              p.path());
}

// Reorders the rows of a rotary projection (weight or bias) from Hugging Face's rotate-half
// layout to the interleaved pairs of llama.cpp's "normal" rope.
void permute_rows(ModelTensor& t, int64_t n_heads) {
    const int64_t n_rows = t.shape.back();
    if (t.shape.size() >= 2) {
        t.row_map = rope_permutation(n_rows, n_heads);
        return;
    }
    // A bias vector: its elements are the rows. Small, so permute it here.
    std::vector<float> values(static_cast<size_t>(n_rows));
    to_float(t.source.type, t.source.data, values.data(), n_rows);
    const std::vector<int64_t> map = rope_permutation(n_rows, n_heads);
    t.owned.resize(values.size());
    for (size_t i = 0; i < map.size(); ++i) t.owned[i] = values[static_cast<size_t>(map[i])];
    t.source = TensorView{{}, GgmlType::F32, t.shape, nullptr, t.owned.size() * sizeof(float)};
}

std::optional<std::string> map_tensor(Import& import, const std::string& hf_name,
                                      ModelTensor& tensor) {
    std::string name = hf_name;
    for (size_t at = name.find("text_model."); at != std::string::npos;
         at = name.find("text_model."))
        name.erase(at, 11);
    std::optional<std::string> gguf = map_with_table(name, k_layer_parts);
    if (!gguf)
        fail("{}: cannot map tensor '{}' of a {} model", import.checkpoint.dir(), hf_name,
             import.hf_architecture);
    const Params& p = import.params;
    const auto layer = parse_layer_name(name);
    if (layer && (layer->part == "self_attn.q_proj" || layer->part == "self_attn.k_proj")) {
        const int64_t heads = p.require_integer("num_attention_heads");
        const int64_t kv_heads = p.require_integer("num_key_value_heads");
        permute_rows(tensor, layer->part == "self_attn.q_proj" ? heads : kv_heads);
    }
    return gguf;
}

void generate(Import& import) {
    const nlohmann::json& rope = import.params.rope_full();
    const auto type = rope.find("rope_type");
    if (type == rope.end() || !type->is_string()) return;
    std::string kind = type->get<std::string>();
    for (char& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (kind != "llama3") return;
    auto number = [&](const char* key, double fallback) {
        const auto it = rope.find(key);
        return it != rope.end() && it->is_number() ? it->get<double>() : fallback;
    };
    import.generated.push_back(generated_tensor(
        "rope_freqs.weight",
        llama3_rope_factors(number("rope_theta", 10000.0),
                            import.params.require_integer("head_dim"), number("factor", 8.0),
                            number("low_freq_factor", 1.0), number("high_freq_factor", 4.0),
                            number("original_max_position_embeddings", 8192.0))));
}

}  // namespace

// Every step is one float32 operation, as the reference implementation (PyTorch) performs it, so
// that the table matches llama.cpp's converter bit for bit: pow is rounded once from double, and
// a scalar divided by a tensor is the tensor's reciprocal times the scalar.
std::vector<float> llama3_rope_factors(double base, int64_t dim, double factor, double low,
                                       double high, double old) {
    const float two_pi = static_cast<float>(2 * M_PI);
    const float high_wavelen = static_cast<float>(old / high);
    const float low_wavelen = static_cast<float>(old / low);
    std::vector<float> values(static_cast<size_t>(std::max<int64_t>(0, dim / 2)));
    for (int64_t k = 0; k < dim / 2; ++k) {
        const float e = static_cast<float>(2 * k) / static_cast<float>(dim);
        const float p = static_cast<float>(std::pow(base, static_cast<double>(e)));
        const float freq = 1.0f / p;
        const float wavelen = (1.0f / freq) * two_pi;
        float value;
        if (wavelen < high_wavelen) {
            value = 1.0f;
        } else if (wavelen > low_wavelen) {
            value = static_cast<float>(factor);
        } else {
            const float s = ((1.0f / wavelen) * static_cast<float>(old) - static_cast<float>(low)) /
                            static_cast<float>(high - low);
            value = 1.0f / ((1.0f - s) / static_cast<float>(factor) + s);
        }
        values[static_cast<size_t>(k)] = value;
    }
    return values;
}

const Family k_llama{"llama",
                     {"LlamaForCausalLM", "LLaMAForCausalLM", "LlamaModel"},
                     {{"vocab_size", 32000},
                      {"hidden_size", 4096},
                      {"intermediate_size", 11008},
                      {"num_hidden_layers", 32},
                      {"num_attention_heads", 32},
                      {"max_position_embeddings", 2048},
                      {"rms_norm_eps", 1e-6},
                      {"rope_theta", 10000.0}},
                     write_hparams,
                     map_tensor,
                     generate};

const Family k_mistral{"llama",
                       {"MistralForCausalLM"},
                       {{"vocab_size", 32000},
                        {"hidden_size", 4096},
                        {"intermediate_size", 14336},
                        {"num_hidden_layers", 32},
                        {"num_attention_heads", 32},
                        {"num_key_value_heads", 8},
                        {"max_position_embeddings", 131072},
                        {"rms_norm_eps", 1e-6},
                        {"rope_theta", 10000.0}},
                       write_hparams,
                       map_tensor,
                       generate};

}  // namespace edgeq::hf
