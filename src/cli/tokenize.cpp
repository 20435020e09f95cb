// edgeq tokenize MODEL (--text S | --file F) [--ids-only] [--no-bos] [--parse-special]: the
// token ids of a text under a model's tokenizer (a vocabulary-only GGUF is enough).
#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq::cli {
namespace {

struct TokenizeArgs {
    std::string model;
    std::string text;
    std::string file;
    bool ids_only = false;
    bool no_bos = false;
    bool parse_special = false;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open", path);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (in.bad()) fail("{}: read failed", path);
    return bytes.str();
}

// A piece for a terminal: printable UTF-8 as is, quotes, backslashes, control characters and
// bytes that are not UTF-8 escaped (\n, \t, \', \\, \xNN).
std::string escaped(const std::string& piece) {
    std::string out;
    size_t i = 0;
    while (i < piece.size()) {
        const auto c = static_cast<uint8_t>(piece[i]);
        size_t len = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        for (size_t k = 1; k < len; ++k) {
            if (i + k >= piece.size() || (static_cast<uint8_t>(piece[i + k]) & 0xC0) != 0x80)
                len = 0;
        }
        if (len > 1) {
            out.append(piece, i, len);
            i += len;
            continue;
        }
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\'' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7F) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
        ++i;
    }
    return out;
}

void run_tokenize(const TokenizeArgs& args) {
    const std::string text = args.file.empty() ? args.text : read_file(args.file);
    const GgufFile file = GgufFile::open(args.model);
    Tokenizer tokenizer = [&] {
        try {
            return Tokenizer::from_metadata(file.metadata());
        } catch (const Error& e) {
            fail("{}: {}", args.model, e.what());
        }
    }();
    const std::vector<int32_t> ids = tokenizer.encode(text, !args.no_bos, args.parse_special);
    std::string out;
    if (args.ids_only) {
        for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? " " : "", ids[i]);
        out += '\n';
    } else {
        for (const int32_t id : ids)
            out += fmt::format("{}\t'{}'\n", id, escaped(tokenizer.piece(id, true)));
    }
    fmt::print("{}", out);
}

}  // namespace

void add_tokenize(CLI::App& app) {
    auto args = std::make_shared<TokenizeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "tokenize",
        "Print the token ids of a text: one line per token, id<TAB>'piece' (the piece's bytes, "
        "with \\n \\t \\r \\' \\\\ and \\xNN escapes), or with --ids-only one line of "
        "space-separated ids");
    cmd->add_option("model", args->model,
                    "GGUF file with tokenizer.ggml.* metadata (a vocabulary-only file will do)")
        ->required();
    auto* text = cmd->add_option("-p,--text", args->text, "The text to tokenize");
    auto* file =
        cmd->add_option("-f,--file", args->file, "Read the text from this file (bytes as is)");
    text->excludes(file);
    cmd->add_flag("--ids-only", args->ids_only, "Print only the ids, space-separated on one line");
    cmd->add_flag("--no-bos", args->no_bos,
                  "Add no special tokens (neither BOS nor EOS, nor BERT's CLS / SEP)");
    cmd->add_flag("--parse-special", args->parse_special,
                  "Text of control tokens (\"<|im_start|>\") becomes those tokens");
    cmd->callback([args, text, file] {
        if (text->count() == 0 && file->count() == 0) fail("tokenize: give --text or --file");
        run_tokenize(*args);
    });
}

}  // namespace edgeq::cli
