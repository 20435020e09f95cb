// The subcommands of the edgeq binary; each adds itself to the app and runs from its callback.
// Failures are thrown as edgeq::Error and reported by main().
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "edgeq/quant/dtype.h"

namespace edgeq::cli {

void add_inspect(CLI::App& app);
void add_convert(CLI::App& app);
void add_quantize(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_run(CLI::App& app);
void add_chat(CLI::App& app);
void add_bench(CLI::App& app);

// A type name as llama.cpp prints it ("q4_k" and "Q4_K" both work), or an Error listing them.
GgmlType parse_type(const std::string& name);

}  // namespace edgeq::cli
