// The tokenizer import, per family as the converter's set_vocab() does it
// (conversion/llama.py, qwen.py, gemma.py, phi.py; base.py _set_vocab_*).
#include "edgeq/formats/hf-tokenizer.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "edgeq/core/error.h"
#include "hf-tokenizer-internal.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;
using namespace hf_tokenizer;

bool is_file(const fs::path& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec);
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) fail("{}: cannot open", path.string());
    const std::streamoff size = in.tellg();
    if (size < 0) fail("{}: cannot read", path.string());
    std::string text(static_cast<size_t>(size), '\0');
    in.seekg(0);
    if (!in.read(text.data(), size)) fail("{}: cannot read", path.string());
    return text;
}

std::optional<std::string> read_if_file(const fs::path& path) {
    if (!is_file(path)) return std::nullopt;
    return read_file(path);
}

// tokenizer.model: model "llama", pre "default", tokens, scores, types, special vocabulary.
void set_vocab_sentencepiece(Sources& sources, KeyList& keys, bool phi3) {
    Vocab vocab = sentencepiece_vocab(sources, phi3);
    const auto n_tokens = static_cast<int64_t>(vocab.tokens.size());
    keys.set_string("tokenizer.ggml.model", "llama");
    keys.set_string("tokenizer.ggml.pre", "default");
    keys.set_strings("tokenizer.ggml.tokens", std::move(vocab.tokens));
    keys.set_floats("tokenizer.ggml.scores", vocab.scores);
    keys.set_int32s("tokenizer.ggml.token_type", vocab.types);
    SpecialVocabOptions options;
    options.n_vocab = n_tokens;
    add_special_vocab(sources, options, keys);
}

// tokenizer.json as a byte-level BPE: model "gpt2", pre, tokens, types, then merges first
// among the special vocabulary.
void set_vocab_gpt2(Sources& sources, KeyList& keys) {
    Vocab vocab = bpe_vocab(sources);
    const std::string pre = bpe_pre_tokenizer(sources);
    keys.set_string("tokenizer.ggml.model", "gpt2");
    keys.set_string("tokenizer.ggml.pre", pre);
    keys.set_strings("tokenizer.ggml.tokens", std::move(vocab.tokens));
    keys.set_int32s("tokenizer.ggml.token_type", vocab.types);
    SpecialVocabOptions options;
    options.load_merges = true;
    add_special_vocab(sources, options, keys);
}

void set_vocab_llama_hf(Sources& sources, KeyList& keys) {
    Vocab vocab = llama_hf_vocab(sources);
    const auto n_tokens = static_cast<int64_t>(vocab.tokens.size());
    keys.set_string("tokenizer.ggml.model", "llama");
    keys.set_string("tokenizer.ggml.pre", "default");
    keys.set_strings("tokenizer.ggml.tokens", std::move(vocab.tokens));
    keys.set_floats("tokenizer.ggml.scores", vocab.scores);
    keys.set_int32s("tokenizer.ggml.token_type", vocab.types);
    SpecialVocabOptions options;
    options.n_vocab = n_tokens;
    add_special_vocab(sources, options, keys);
}

// Whether a Llama checkpoint without tokenizer.model takes LlamaHfVocab (a BPE with byte
// fallback and a Sequence decoder) rather than the GPT-2 path, decided as LlamaHfVocab's
// constructor decides it: the Python errors it catches send it to the GPT-2 path.
bool takes_llama_hf(Sources& sources) {
    const json* tokenizer = sources.tokenizer_json();
    if (tokenizer == nullptr) return false;
    const std::string where = sources.path("tokenizer.json");
    const auto required = [&](const json& object, const char* key,
                              const std::string& at) -> const json& {
        const json* value = get(object, key, at);
        if (value == nullptr) fail("{}: no \"{}\"", at, key);
        return *value;
    };
    const json& model = required(*tokenizer, "model", where);
    const json& type = required(model, "type", where + ": model");
    const auto flag = [&](const char* key, bool fallback) {
        const json* value = get(model, key, where + ": model");
        return value == nullptr ? fallback : truthy(*value);
    };
    const bool bpe = py_equal(type, "BPE");
    if (bpe && flag("ignore_merges", false) && !flag("byte_fallback", true))
        return false;  // Llama 3
    if (!bpe || !flag("byte_fallback", false)) return false;
    const json& decoder = required(*tokenizer, "decoder", where);
    if (!decoder.is_object()) return false;  // TypeError in Python: caught, GPT-2 path
    return py_equal(required(decoder, "type", where + ": decoder"), "Sequence");
}

void set_vocab_llama(Sources& sources, KeyList& keys) {
    const HfTokenizerFiles& files = sources.files();
    if (files.has_tekken_json && !files.tokenizer_json) {
        fail(
            "{}: only tekken.json (Mistral's own format, read with mistral-common) is present; "
            "edgeq reads tokenizer.json or tokenizer.model",
            sources.input().dir);
    }
    if (const json* config = sources.tokenizer_config()) {
        const std::string where = sources.path("tokenizer_config.json");
        if (const json* prefix = get(*config, "add_prefix_space", where);
            prefix != nullptr && !prefix->is_null()) {
            keys.set_bool("tokenizer.ggml.add_space_prefix", truthy(*prefix));
        }
        if (const json* cls = get(*config, "tokenizer_class", where);
            cls != nullptr && py_equal(*cls, "HybridDNATokenizer")) {
            fail("{}: tokenizer_class HybridDNATokenizer is not supported", where);
        }
    }
    if (files.tokenizer_model) {
        set_vocab_sentencepiece(sources, keys, false);
    } else if (takes_llama_hf(sources)) {
        set_vocab_llama_hf(sources, keys);
    } else {
        set_vocab_gpt2(sources, keys);
    }
    const int64_t vocab_size = sources.input().vocab_size > 0 ? sources.input().vocab_size : 32000;
    if (vocab_size == 32016) {  // CodeLlama: its end-of-turn token
        SpecialVocabOptions options;
        options.types = {"prefix", "suffix", "middle", "eot"};
        options.extra_ids = {
            {"prefix", 32007}, {"suffix", 32008}, {"middle", 32009}, {"eot", 32010}};
        add_special_vocab(sources, options, keys);
    }
    if (vocab_size == 49152) keys.set_bool("tokenizer.ggml.add_bos_token", false);  // SmolLM
}

void set_vocab_phi3(Sources& sources, KeyList& keys) {
    if (const json* config = sources.tokenizer_config()) {
        const std::string where = sources.path("tokenizer_config.json");
        const json* cls = get(*config, "tokenizer_class", where);
        if (cls == nullptr) fail("{}: no tokenizer_class", where);
        if (py_equal(*cls, "GPT2Tokenizer")) {  // Phi-4
            set_vocab_gpt2(sources, keys);
            return;
        }
    }
    if (!sources.files().tokenizer_model) {
        fail("{}: missing (Phi-3 needs it)", sources.path("tokenizer.model"));
    }
    set_vocab_sentencepiece(sources, keys, true);
}

}  // namespace

HfTokenizerFiles HfTokenizerFiles::read(const std::string& dir) {
    const fs::path root(dir);
    HfTokenizerFiles files;
    files.tokenizer_json = read_if_file(root / "tokenizer.json");
    files.tokenizer_config_json = read_if_file(root / "tokenizer_config.json");
    files.tokenizer_model = read_if_file(root / "tokenizer.model");
    files.added_tokens_json = read_if_file(root / "added_tokens.json");
    files.merges_txt = read_if_file(root / "merges.txt");
    files.chat_template_jinja = read_if_file(root / "chat_template.jinja");
    files.chat_template_json = read_if_file(root / "chat_template.json");
    files.has_tekken_json = is_file(root / "tekken.json");
    const fs::path additional = root / "additional_chat_templates";
    std::error_code ec;
    if (files.chat_template_jinja && fs::is_directory(additional, ec)) {
        // Directory order, as Python's Path.glob() gives it.
        for (fs::directory_iterator it(additional, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.size() < 6 || !name.ends_with(".jinja")) continue;
            const std::string stem = name == ".jinja" ? name : name.substr(0, name.size() - 6);
            files.additional_chat_templates.emplace_back(stem, read_file(it->path()));
        }
        if (ec) fail("{}: cannot list: {}", additional.string(), ec.message());
    }
    return files;
}

GgufMetadata hf_tokenizer_metadata(const HfTokenizerInput& input) {
    return hf_tokenizer_metadata(input, HfTokenizerFiles::read(input.dir));
}

GgufMetadata hf_tokenizer_metadata(const HfTokenizerInput& input, const HfTokenizerFiles& files) {
    Sources sources(input, files);
    KeyList keys;
    const std::string& arch = input.architecture;
    if (arch == "llama") {
        set_vocab_llama(sources, keys);
    } else if (arch == "qwen2" || arch == "qwen3") {
        if (files.tokenizer_model) {
            set_vocab_sentencepiece(sources, keys, false);
        } else {
            set_vocab_gpt2(sources, keys);
        }
    } else if (arch == "gemma2" || arch == "gemma3") {
        if (files.tokenizer_model) {
            set_vocab_sentencepiece(sources, keys, false);
            keys.set_bool("tokenizer.ggml.add_space_prefix", false);
        } else if (arch == "gemma3") {
            set_vocab_gpt2(sources, keys);
        } else {
            fail("{}: missing (Gemma 2 needs it)", sources.path("tokenizer.model"));
        }
    } else if (arch == "phi3") {
        set_vocab_phi3(sources, keys);
    } else {
        fail(
            "{}: no tokenizer import for architecture '{}' (supported: llama, qwen2, qwen3, "
            "gemma2, "
            "gemma3, phi3)",
            input.dir, arch);
    }
    return keys.take();
}

}  // namespace edgeq
