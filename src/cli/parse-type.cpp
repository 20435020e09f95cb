#include <string>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/quant/quantize.h"

namespace edgeq::cli {

GgmlType parse_type(const std::string& name) {
    const DType* t = find_dtype(std::string_view(name));
    if (t == nullptr || !can_quantize(t->type) || t->type == GgmlType::Q8_K) {
        std::string known;
        for (const DType& d : all_dtypes()) {
            if (can_quantize(d.type) && d.type != GgmlType::Q8_K)
                known += (known.empty() ? "" : ", ") + std::string(d.name);
        }
        fail("unknown tensor type '{}' (expected one of: {})", name, known);
    }
    return t->type;
}

std::string mix_names() {
    std::string names;
    for (const QuantMix& m : all_mixes())
        names += (names.empty() ? "" : ", ") + std::string(m.name);
    return names;
}

const QuantMix& parse_mix(const std::string& name) {
    const QuantMix* mix = find_mix(name);
    if (mix == nullptr) fail("unknown type '{}' (expected one of: {})", name, mix_names());
    return *mix;
}

void add_mix_flags(CLI::App& cmd, MixFlags& flags, const std::string& leave_output_help) {
    cmd.add_option("--tensor-type", flags.tensor_types,
                   "REGEX=TYPE: tensors whose name matches get TYPE (repeatable)");
    cmd.add_option("--output-tensor-type", flags.output_tensor_type, "Type of output.weight");
    cmd.add_option("--token-embedding-type", flags.token_embedding_type,
                   "Type of token_embd.weight");
    cmd.add_flag("--pure", flags.pure, "No per-tensor rules: the mix's type for every tensor");
    cmd.add_flag("--leave-output-tensor", flags.leave_output_tensor, leave_output_help);
}

MixOptions parse_mix_flags(const MixFlags& flags) {
    MixOptions options;
    for (const std::string& spec : flags.tensor_types) {
        const size_t eq = spec.rfind('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
            fail("--tensor-type '{}': expected REGEX=TYPE, e.g. attn_v=q8_0", spec);
        }
        options.tensor_types.emplace_back(spec.substr(0, eq), parse_type(spec.substr(eq + 1)));
    }
    if (!flags.output_tensor_type.empty())
        options.output_tensor_type = parse_type(flags.output_tensor_type);
    if (!flags.token_embedding_type.empty())
        options.token_embedding_type = parse_type(flags.token_embedding_type);
    options.pure = flags.pure;
    options.leave_output_tensor = flags.leave_output_tensor;
    return options;
}

}  // namespace edgeq::cli
