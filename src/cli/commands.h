// The subcommands of the edgeq binary; each adds itself to the app and runs from its callback.
// Failures are thrown as edgeq::Error and reported by main().
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "edgeq/quant/dtype.h"
#include "edgeq/quant/mix.h"

namespace edgeq::cli {

void add_inspect(CLI::App& app);
void add_convert(CLI::App& app);
void add_quantize(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_run(CLI::App& app);
void add_chat(CLI::App& app);
void add_bench(CLI::App& app);
void add_demo(CLI::App& app);
void add_imatrix(CLI::App& app);
void add_export(CLI::App& app);
void add_eval(CLI::App& app);
void add_serve(CLI::App& app);

// A type name as llama.cpp prints it ("q4_k" and "Q4_K" both work), or an Error listing them.
GgmlType parse_type(const std::string& name);

// The names of every mix, comma-separated (for help and errors).
std::string mix_names();
// The mix named `name` (Q4_K_M, q8_0...), or an Error listing them.
const QuantMix& parse_mix(const std::string& name);

// The per-tensor options of edgeq quantize and edgeq convert, as given on the command line.
struct MixFlags {
    std::vector<std::string> tensor_types;  // REGEX=TYPE
    std::string output_tensor_type;
    std::string token_embedding_type;
    bool pure = false;
    bool leave_output_tensor = false;
};
// Adds --tensor-type, --output-tensor-type, --token-embedding-type, --pure and
// --leave-output-tensor (`leave_output_help` says what "as it is" means for the command).
void add_mix_flags(CLI::App& cmd, MixFlags& flags, const std::string& leave_output_help);
// Checks the flags and turns them into MixOptions (an Error names a bad one).
MixOptions parse_mix_flags(const MixFlags& flags);

}  // namespace edgeq::cli
