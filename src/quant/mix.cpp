#include "edgeq/quant/mix.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

using T = GgmlType;
using F = FileType;

// clang-format off
const std::vector<QuantMix> k_mixes = {
    {"Q4_0",   F::mostly_q4_0,   T::Q4_0,   "4.5 bpw, legacy round-to-nearest"},
    {"Q4_1",   F::mostly_q4_1,   T::Q4_1,   "5.0 bpw, legacy with minimum"},
    {"Q5_0",   F::mostly_q5_0,   T::Q5_0,   "5.5 bpw, legacy"},
    {"Q5_1",   F::mostly_q5_1,   T::Q5_1,   "6.0 bpw, legacy with minimum"},
    {"Q8_0",   F::mostly_q8_0,   T::Q8_0,   "8.5 bpw, near lossless"},
    {"Q2_K",   F::mostly_q2_k,   T::Q2_K,   "about 2.6-3.0 bpw mix"},
    {"Q2_K_S", F::mostly_q2_k_s, T::Q2_K,   "about 2.6 bpw mix, needs an imatrix"},
    {"Q3_K_S", F::mostly_q3_k_s, T::Q3_K,   "about 3.4 bpw"},
    {"Q3_K_M", F::mostly_q3_k_m, T::Q3_K,   "about 3.9 bpw mix"},
    {"Q3_K_L", F::mostly_q3_k_l, T::Q3_K,   "about 4.3 bpw mix"},
    {"Q4_K_S", F::mostly_q4_k_s, T::Q4_K,   "about 4.6 bpw mix"},
    {"Q4_K_M", F::mostly_q4_k_m, T::Q4_K,   "about 4.9 bpw mix, the usual choice"},
    {"Q5_K_S", F::mostly_q5_k_s, T::Q5_K,   "about 5.5 bpw mix"},
    {"Q5_K_M", F::mostly_q5_k_m, T::Q5_K,   "about 5.7 bpw mix"},
    {"Q6_K",   F::mostly_q6_k,   T::Q6_K,   "6.56 bpw"},
    {"IQ4_NL", F::mostly_iq4_nl, T::IQ4_NL, "4.5 bpw, non-linear grid"},
    {"IQ4_XS", F::mostly_iq4_xs, T::IQ4_XS, "4.25 bpw, non-linear grid"},
    {"TQ1_0",  F::mostly_tq1_0,  T::TQ1_0,  "1.69 bpw ternary (for ternary-trained models)"},
    {"TQ2_0",  F::mostly_tq2_0,  T::TQ2_0,  "2.06 bpw ternary (for ternary-trained models)"},
    {"F16",    F::mostly_f16,    T::F16,    "16 bpw"},
    {"BF16",   F::mostly_bf16,   T::BF16,   "16 bpw, bfloat16"},
    {"F32",    F::all_f32,       T::F32,    "32 bpw"},
};
// clang-format on

const std::map<std::string, std::string> k_aliases = {
    {"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

enum class Category {
    token_embd,
    attn_q,
    attn_v,
    attn_k,
    attn_qkv,
    attn_kv_b,
    attn_output,
    ffn_up,
    ffn_gate,
    ffn_down,
    output,
    other
};

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

Category category_of(const std::string& name) {
    if (name == "output.weight") return Category::output;
    if (name == "token_embd.weight" || name == "per_layer_token_embd.weight")
        return Category::token_embd;
    if (contains(name, "attn_qkv.weight")) return Category::attn_qkv;
    if (contains(name, "attn_kv_b.weight")) return Category::attn_kv_b;
    if (contains(name, "attn_v.weight")) return Category::attn_v;
    if (contains(name, "attn_k.weight")) return Category::attn_k;
    if (contains(name, "attn_q.weight")) return Category::attn_q;
    if (contains(name, "attn_output.weight")) return Category::attn_output;
    if (contains(name, "ffn_up")) return Category::ffn_up;
    if (contains(name, "ffn_gate")) return Category::ffn_gate;
    if (contains(name, "ffn_down")) return Category::ffn_down;
    return Category::other;
}

bool is_attn_v(Category c) {
    return c == Category::attn_v || c == Category::attn_qkv || c == Category::attn_kv_b;
}

// ggml's dimension count: trailing dimensions of size 1 do not count.
int n_dims(const std::vector<int64_t>& shape) {
    int n = static_cast<int>(shape.size());
    while (n > 1 && shape[static_cast<size_t>(n - 1)] == 1) --n;
    return n;
}

// Tensors that are never quantized: vectors, norms, router weights, position tables and the
// small special-purpose matrices of some architectures.
bool allows_quantization(const TensorIn& t, const MixOptions& options) {
    if (n_dims(t.shape) < 2) return false;
    const std::string& name = t.name;
    if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
    if (options.leave_output_tensor && name == "output.weight") return false;
    if (name == "position_embd.weight" || name == "token_types.weight") return false;
    static const char* const k_excluded[] = {"_norm.weight",
                                             "ffn_gate_inp.weight",
                                             "ffn_gate_tid2eid.weight",
                                             "altup",
                                             "laurel",
                                             "per_layer_model_proj",
                                             "ssm_conv1d",
                                             "shortconv.conv.weight",
                                             "indexer.k_proj.weight",
                                             "indexer.q_proj.weight",
                                             "time_mix_first.weight",
                                             "time_mix_w0.weight",
                                             "time_mix_w1.weight",
                                             "time_mix_w2.weight",
                                             "time_mix_v0.weight",
                                             "time_mix_v1.weight",
                                             "time_mix_v2.weight",
                                             "time_mix_a0.weight",
                                             "time_mix_a1.weight",
                                             "time_mix_a2.weight",
                                             "time_mix_g1.weight",
                                             "time_mix_g2.weight",
                                             "time_mix_decay_w1.weight",
                                             "time_mix_decay_w2.weight",
                                             "time_mix_lerp_fused.weight",
                                             "attn_rel_b.weight",
                                             ".position_embd",
                                             "sam.pos_embd",
                                             "sam.neck.",
                                             "sam.net_",
                                             ".rel_pos",
                                             ".patch_embd",
                                             ".patch_merger",
                                             "a.rvq.codebook",
                                             "mm.a.code_embd"};
    for (const char* part : k_excluded) {
        if (contains(name, part)) return false;
    }
    return true;
}

bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

int layer_of(const std::string& name) {
    int layer = -1;
    if (name.rfind("blk.", 0) == 0) {
        size_t i = 4;
        int v = 0;
        bool digits = false;
        while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) {
            v = v * 10 + (name[i] - '0');
            ++i;
            digits = true;
        }
        if (digits && i < name.size() && name[i] == '.') layer = v;
    }
    return layer;
}

struct MixState {
    const QuantMix& mix;
    const ModelFacts& model;
    bool has_imatrix;
    std::optional<GgmlType> output_tensor_type;
    bool tied_embeddings = true;
    int n_attention_wv = 0;
    int i_attention_wv = 0;
    int i_ffn_down = 0;
    int i_ffn_gate = 0;
    int i_ffn_up = 0;

    int64_t n_gqa() const { return model.n_head_kv > 0 ? model.n_head / model.n_head_kv : 1; }
    bool is_70b() const {
        if (model.n_layer != 80) return false;
        if (model.architecture == "llama") return model.n_head != model.n_head_kv;
        return model.architecture == "qwen2" || model.architecture == "deci" ||
               model.architecture == "olmo";
    }
    // The layer index for the per-layer rules: the running count, or the name's block number
    // for mixture-of-experts models, whose expert tensors are not in layer order.
    int layer_index(int counter, const std::string& name) const {
        if (model.n_expert > 1) {
            const int layer = layer_of(name);
            if (layer < 0 || layer >= model.n_layer)
                fail("tensor '{}': cannot tell its layer", name);
            return layer;
        }
        return counter;
    }
};

// The per-tensor rules of a mix (llama.cpp's llama_tensor_get_type_impl, for the mixes edgeq
// offers). Advances the state's layer counters as llama.cpp does.
GgmlType mix_rule(MixState& s, GgmlType type, const TensorIn& t, Category category) {
    const F ftype = s.mix.file_type;
    const std::string& arch = s.model.architecture;
    const bool falcon = arch == "falcon";
    const int n_layer = static_cast<int>(s.model.n_layer);

    if (category == Category::output || (s.tied_embeddings && category == Category::token_embd)) {
        if (s.output_tensor_type) return *s.output_tensor_type;
        const int64_t block = dtype(type).block_size;
        if (falcon || t.shape[0] % block != 0) return T::Q8_0;
        if (type != T::Q8_0) return T::Q6_K;
        return type;
    }
    if (category == Category::token_embd) {
        if (ftype == F::mostly_tq1_0 || ftype == F::mostly_tq2_0) return T::Q4_K;
        return type;
    }
    if (is_attn_v(category)) {
        if (ftype == F::mostly_q2_k) {
            type = s.n_gqa() >= 4 ? T::Q4_K : T::Q3_K;
        } else if (ftype == F::mostly_q2_k_s && s.n_gqa() >= 4) {
            type = T::Q4_K;
        } else if (ftype == F::mostly_q3_k_m) {
            type = s.i_attention_wv < 2 ? T::Q5_K : T::Q4_K;
        } else if (ftype == F::mostly_q3_k_l) {
            type = T::Q5_K;
        } else if ((ftype == F::mostly_iq4_nl || ftype == F::mostly_iq4_xs) && s.n_gqa() >= 4) {
            type = T::Q5_K;
        } else if ((ftype == F::mostly_q4_k_m || ftype == F::mostly_q5_k_m) &&
                   use_more_bits(s.i_attention_wv, s.n_attention_wv)) {
            type = T::Q6_K;
        } else if (ftype == F::mostly_q4_k_s && s.i_attention_wv < 4) {
            type = T::Q5_K;
        }
        // 70B models share attn_v among 8 heads: the tensor is small, so more bits are cheap.
        if (s.is_70b() && (type == T::Q3_K || type == T::Q4_K)) type = T::Q5_K;
        if (s.model.n_expert == 8) type = T::Q8_0;
        ++s.i_attention_wv;
        return type;
    }
    if (category == Category::attn_k) {
        if (s.model.n_expert == 8) type = T::Q8_0;
        return type;
    }
    if (category == Category::attn_q) return type;
    if (category == Category::ffn_down) {
        const int i_layer = s.layer_index(s.i_ffn_down, t.name);
        if (ftype == F::mostly_q2_k) {
            type = T::Q3_K;
        } else if (ftype == F::mostly_q2_k_s) {
            if (i_layer < n_layer / 8) type = T::Q4_K;
        } else if (ftype == F::mostly_q3_k_m) {
            type = i_layer < n_layer / 16                         ? T::Q5_K
                   : (!falcon || use_more_bits(i_layer, n_layer)) ? T::Q4_K
                                                                  : T::Q3_K;
        } else if (ftype == F::mostly_q3_k_l) {
            type = falcon ? T::Q4_K : T::Q5_K;
        } else if (ftype == F::mostly_q4_k_m) {
            if (falcon) {
                type = i_layer < n_layer / 16            ? T::Q6_K
                       : use_more_bits(i_layer, n_layer) ? T::Q5_K
                                                         : T::Q4_K;
            } else if (use_more_bits(i_layer, n_layer)) {
                type = T::Q6_K;
            }
        } else if (i_layer < n_layer / 8 &&
                   (ftype == F::mostly_iq4_nl || ftype == F::mostly_iq4_xs) && !s.has_imatrix) {
            type = T::Q5_K;
        } else if (ftype == F::mostly_q5_k_m && use_more_bits(i_layer, n_layer)) {
            type = T::Q6_K;
        } else if (ftype == F::mostly_q4_k_s && !falcon && i_layer < n_layer / 8) {
            type = T::Q5_K;
        } else if ((ftype == F::mostly_q4_0 || ftype == F::mostly_q5_0) && s.has_imatrix &&
                   i_layer < n_layer / 8) {
            // The first ffn_down layers are the most fragile; with an imatrix the legacy mixes
            // give them the variant with a minimum.
            type = ftype == F::mostly_q4_0 ? T::Q4_1 : T::Q5_1;
        }
        ++s.i_ffn_down;
        return type;
    }
    if (category == Category::attn_output) {
        if (!falcon) {
            if (s.model.n_expert == 8) {
                if (ftype == F::mostly_q2_k || ftype == F::mostly_q3_k_s ||
                    ftype == F::mostly_q3_k_m || ftype == F::mostly_iq4_nl ||
                    ftype == F::mostly_q4_k_s || ftype == F::mostly_q4_k_m ||
                    ftype == F::mostly_iq4_xs) {
                    type = T::Q5_K;
                }
            } else {
                if (ftype == F::mostly_q2_k)
                    type = T::Q3_K;
                else if (ftype == F::mostly_q3_k_m)
                    type = T::Q4_K;
                else if (ftype == F::mostly_q3_k_l)
                    type = T::Q5_K;
            }
        } else if (ftype == F::mostly_q3_k_l) {
            type = T::Q4_K;
        }
        return type;
    }
    if (category == Category::attn_qkv) {  // unreachable: attn_qkv counts as attn_v above
        return type;
    }
    if (category == Category::ffn_gate) {
        ++s.i_ffn_gate;
        return type;
    }
    if (category == Category::ffn_up) {
        ++s.i_ffn_up;
        return type;
    }
    return type;
}

// A type whose block divides a row of `ncols`, for a tensor the chosen type does not fit.
GgmlType fallback_type(GgmlType type, int64_t ncols, bool& fell_back) {
    if (ncols % dtype(type).block_size == 0) return type;
    fell_back = true;
    GgmlType fallback = type;
    switch (type) {
        case T::IQ4_XS:
            fallback = T::IQ4_NL;
            break;
        case T::Q2_K:
        case T::Q3_K:
        case T::TQ1_0:
        case T::TQ2_0:
            fallback = T::Q4_0;
            break;
        case T::Q4_K:
            fallback = T::Q5_0;
            break;
        case T::Q5_K:
            fallback = T::Q5_1;
            break;
        case T::Q6_K:
            fallback = T::Q8_0;
            break;
        default:
            if (dtype(type).block_size > 32)
                fail("no fallback type is defined for {}", dtype(type).name);
            break;
    }
    if (ncols % dtype(fallback).block_size != 0) fallback = T::F16;
    return fallback;
}

bool needs_imatrix(const std::string& name, GgmlType type, FileType ftype) {
    if (name == "output.weight" || name == "token_embd.weight" ||
        name == "per_layer_token_embd.weight")
        return false;
    return type == T::Q2_K && ftype == F::mostly_q2_k_s;
}

}  // namespace

const QuantMix* find_mix(std::string_view name) {
    std::string key = upper(name);
    if (auto alias = k_aliases.find(key); alias != k_aliases.end()) key = alias->second;
    for (const QuantMix& mix : k_mixes) {
        if (mix.name == key) return &mix;
    }
    return nullptr;
}

const std::vector<QuantMix>& all_mixes() {
    return k_mixes;
}

std::string file_type_name(uint32_t file_type) {
    for (const QuantMix& mix : k_mixes) {
        if (static_cast<uint32_t>(mix.file_type) == file_type) return std::string(mix.name);
    }
    return fmt::format("unknown ({})", file_type);
}

std::vector<TensorChoice> choose_types(const QuantMix& mix, const ModelFacts& model,
                                       const std::vector<TensorIn>& tensors,
                                       const MixOptions& options) {
    MixState state{mix, model, options.has_imatrix, options.output_tensor_type};
    std::vector<Category> categories(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        categories[i] = category_of(tensors[i].name);
        if (is_attn_v(categories[i])) ++state.n_attention_wv;
        if (categories[i] == Category::output) state.tied_embeddings = false;
    }
    std::vector<std::pair<std::regex, GgmlType>> patterns;
    for (const auto& [text, type] : options.tensor_types) {
        std::string lowered = text;
        for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        try {
            patterns.emplace_back(std::regex(lowered), type);
        } catch (const std::regex_error& e) {
            fail("--tensor-type '{}': not a valid regular expression ({})", text, e.what());
        }
    }

    // llama.cpp visits tensors ordered by layer (non-layer tensors first), then by name; the
    // per-layer counters depend on that order.
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const int la = layer_of(tensors[a].name);
        const int lb = layer_of(tensors[b].name);
        if (la != lb) return la < lb;
        return tensors[a].name < tensors[b].name;
    });

    const bool quantized_mix = dtype(mix.default_type).quantized;
    std::vector<TensorChoice> choices(tensors.size());
    for (size_t i : order) {
        const TensorIn& t = tensors[i];
        const Category category = categories[i];
        TensorChoice& choice = choices[i];
        choice = {t.type, allows_quantization(t, options), false, false};
        if (!choice.quantizable) continue;
        if (options.token_embedding_type && category == Category::token_embd) {
            choice.type = *options.token_embedding_type;
        } else if (options.output_tensor_type && category == Category::output) {
            choice.type = *options.output_tensor_type;
        } else {
            GgmlType type = mix.default_type;
            if (quantized_mix) {
                bool manual = false;
                for (const auto& [pattern, override_type] : patterns) {
                    if (std::regex_search(t.name, pattern)) {
                        type = override_type;
                        manual = true;
                        break;
                    }
                }
                if (!manual && !options.pure) type = mix_rule(state, type, t, category);
                type = fallback_type(type, t.shape[0], choice.fell_back);
            }
            choice.type = type;
        }
        choice.needs_imatrix = needs_imatrix(t.name, choice.type, mix.file_type);
    }
    return choices;
}

}  // namespace edgeq
