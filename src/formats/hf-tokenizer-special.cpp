// gguf-py's SpecialVocab (gguf/vocab.py), line for line where the order of its decisions shows
// in the output: merges, special token ids, add_* flags, chat templates, normalizer flags.
#include <algorithm>
#include <cctype>
#include <string_view>

#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "hf-tokenizer-internal.h"

namespace edgeq::hf_tokenizer {
namespace {

const json k_null = nullptr;
const json k_empty_object = json::object();
const json k_empty_array = json::array();
const json k_empty_string = "";

// object.get(key, fallback) (object must be a JSON object).
const json& get_or(const json& object, std::string_view key, const json& fallback,
                   std::string_view where) {
    const json* value = get(object, key, where);
    return value != nullptr ? *value : fallback;
}

// The items Python's `for x in value` yields; Errors for what it cannot iterate.
// Strings and non-empty objects would yield strings, on which the converter then calls
// .get() and fails, so only arrays and empty containers are accepted.
const json& iterable(const json& value, std::string_view where) {
    if (value.is_array()) return value;
    if ((value.is_object() || value.is_string()) && !truthy(value)) return k_empty_array;
    fail("{}: is {}, expected an array", where, describe(value));
}

size_t code_points(std::string_view text) {
    return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
    }));
}

// value[0] as Python indexes a list or a string.
json first_item(const json& value, std::string_view where) {
    if (value.is_array() && !value.empty()) return value[0];
    if (value.is_string() && !value.get_ref<const std::string&>().empty()) {
        const std::string& s = value.get_ref<const std::string&>();
        size_t n = 1;
        while (n < s.size() && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) ++n;
        return s.substr(0, n);
    }
    fail("{}: is {}, expected a non-empty array", where, describe(value));
}

// item.get('SpecialToken', {}).get('id') and the like.
json nested_id(const json& item, std::string_view kind, std::string_view where) {
    const json& inner = get_or(item, kind, k_empty_object, where);
    return get_or(inner, "id", k_null, fmt::format("{}: {}", where, kind));
}

bool in_pair(const json& value, const json& a, const json& b) {
    return py_equal(value, a) || py_equal(value, b);
}

std::string id_key(std::string_view type) {
    static const std::pair<std::string_view, std::string_view> k_keys[] = {
        {"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
        {"pad", "tokenizer.ggml.padding_token_id"}, {"mask", "tokenizer.ggml.mask_token_id"},
        {"eot", "tokenizer.ggml.eot_token_id"},     {"eom", "tokenizer.ggml.eom_token_id"},
    };
    for (const auto& [name, key] : k_keys) {
        if (name == type) return std::string(key);
    }
    return {};
}

std::string add_key(std::string_view type) {
    if (type == "bos") return "tokenizer.ggml.add_bos_token";
    if (type == "eos") return "tokenizer.ggml.add_eos_token";
    if (type == "sep") return "tokenizer.ggml.add_sep_token";
    return {};
}

// A template name as gguf-py keys it: every character other than an ASCII letter or digit
// becomes '_' (one per code point).
std::string template_key_name(std::string_view name) {
    std::string out;
    for (size_t i = 0; i < name.size(); ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if ((c & 0xc0) == 0x80) continue;
        out += std::isalnum(c) != 0 && c < 0x80 ? static_cast<char>(c) : '_';
    }
    return out;
}

class SpecialVocab {
  public:
    SpecialVocab(Sources& sources, const SpecialVocabOptions& options)
        : sources_(sources),
          load_merges_(options.load_merges),
          n_vocab_(options.n_vocab),
          types_(options.types) {
        load_from_tokenizer_json();
        load_from_config_json();
        if (load_merges_ && merges_.empty()) load_merges_txt();
        for (const auto& [type, id] : options.extra_ids) set_special(type, id, "");
    }

    void add_to(KeyList& keys) const;

  private:
    void load_from_tokenizer_json();
    void load_post_processor(const json& tokenizer, json& config);
    void load_chat_template(const json& config);
    void load_from_config_json();
    void load_merges_txt();
    void parse_normalizer(const json& normalizer, const std::string& where);
    void set_special(const std::string& type, const json& id, std::string_view where);
    void set_special(const std::string& type, int64_t id, std::string_view where);
    void set_add(const std::string& type, bool value, bool overwrite);
    bool has_add(const std::string& type) const;
    void add_template(KeyList& keys, const std::string& key, const json& value) const;

    Sources& sources_;
    bool load_merges_;
    std::optional<int64_t> n_vocab_;
    std::vector<std::string> types_;
    const json* added_tokens_ = &k_empty_object;  // tokenizer.json "added_tokens"

    std::vector<std::string> merges_;
    std::vector<std::pair<std::string, int64_t>> ids_;  // in the order first set
    std::vector<std::pair<std::string, bool>> add_;     // likewise
    json chat_template_;                                // null, a string or an array
    std::optional<json> lowercase_;                     // as set; null means "not written"
    std::optional<json> strip_accents_;
};

void SpecialVocab::set_special(const std::string& type, const json& id, std::string_view where) {
    const std::optional<int64_t> value = as_int(id);
    if (value) set_special(type, *value, where);
}

void SpecialVocab::set_special(const std::string& type, int64_t id, std::string_view where) {
    if (id < 0) fail("{}: invalid value for special token type {}: {}", where, type, id);
    if (!n_vocab_ || id < *n_vocab_) {
        const auto same = [&](const auto& entry) { return entry.first == type; };
        if (std::none_of(ids_.begin(), ids_.end(), same)) ids_.emplace_back(type, id);
        return;
    }
    log_warn("{}: special token type {}, id {} out of range, must be under {} - skipping", where,
             type, id, *n_vocab_);
}

void SpecialVocab::set_add(const std::string& type, bool value, bool overwrite) {
    for (auto& [name, flag] : add_) {
        if (name == type) {
            if (overwrite) flag = value;
            return;
        }
    }
    add_.emplace_back(type, value);
}

bool SpecialVocab::has_add(const std::string& type) const {
    return std::any_of(add_.begin(), add_.end(), [&](const auto& e) { return e.first == type; });
}

void SpecialVocab::load_from_tokenizer_json() {
    const std::string where = sources_.path("tokenizer.json");
    const json* tokenizer = sources_.tokenizer_json();
    if (tokenizer != nullptr) {
        if (load_merges_) {
            const json& model = get_or(*tokenizer, "model", k_empty_object, where);
            const json* merges = get(model, "merges", where + ": model");
            if (merges != nullptr && merges->is_array() && !merges->empty()) {
                const json& first = (*merges)[0];
                if (first.is_string()) {
                    merges_.reserve(merges->size());
                    for (size_t i = 0; i < merges->size(); ++i) {
                        const json& m = (*merges)[i];
                        if (!m.is_string()) {
                            fail("{}: model.merges[{}] is {}, expected a string like the first",
                                 where, i, describe(m));
                        }
                        merges_.push_back(m.get<std::string>());
                    }
                } else if (first.is_array() && first.size() == 2 && first[0].is_string()) {
                    // The pair form of tokenizers >= 0.20; a space inside a part is written
                    // as U+0120 ('Ġ'), the byte-level alphabet's space.
                    merges_.reserve(merges->size());
                    for (size_t i = 0; i < merges->size(); ++i) {
                        const json& pair = (*merges)[i];
                        if (!pair.is_array()) {
                            fail("{}: model.merges[{}] is {}, expected a pair of strings", where, i,
                                 describe(pair));
                        }
                        std::string merged;
                        for (size_t k = 0; k < pair.size(); ++k) {
                            if (!pair[k].is_string()) {
                                fail("{}: model.merges[{}][{}] is {}, expected a string", where, i,
                                     k, describe(pair[k]));
                            }
                            if (k > 0) merged += ' ';
                            merged +=
                                replace_all(pair[k].get_ref<const std::string&>(), " ", "\xc4\xa0");
                        }
                        merges_.push_back(std::move(merged));
                    }
                } else {
                    fail(
                        "{}: model.merges: unknown format (the first entry is {}; expected "
                        "strings \"a b\" or pairs [\"a\", \"b\"])",
                        where, describe(first));
                }
            }
        }
        const json* normalizer = get(*tokenizer, "normalizer", where);
        if (normalizer != nullptr && truthy(*normalizer)) {
            parse_normalizer(*normalizer, where + ": normalizer");
        }
        added_tokens_ = &get_or(*tokenizer, "added_tokens", k_empty_object, where);
    }

    const json* config_file = sources_.tokenizer_config();
    json config = config_file != nullptr ? *config_file : json(nullptr);  // mutated below
    if (tokenizer != nullptr && truthy(*tokenizer)) load_post_processor(*tokenizer, config);
    if (!truthy(config)) return;
    load_chat_template(config);

    const std::string config_where = sources_.path("tokenizer_config.json");
    for (size_t t = 0; t < types_.size(); ++t) {
        const std::string type = types_[t];
        const json& add_entry = get_or(config, "add_" + type + "_token", k_null, config_where);
        if (add_entry.is_boolean()) {
            if (!has_add(type)) {
                set_add(type, add_entry.get<bool>(), false);
            } else {
                log_debug(
                    "{}: add_{}_token disagrees with tokenizer.json's post-processor, "
                    "which wins",
                    config_where, type);
            }
        }
        const json& entry = get_or(config, type + "_token", k_null, config_where);
        std::string content;
        if (entry.is_string()) {
            content = entry.get<std::string>();
        } else if (entry.is_object()) {
            const json& c = get_or(entry, "content", k_null, config_where);
            if (!c.is_string()) continue;
            content = c.get<std::string>();
        } else {
            continue;
        }
        // The first added token of tokenizer.json with this content.
        const std::string added_where = where + ": added_tokens";
        json id = nullptr;
        for (const json& token : iterable(*added_tokens_, added_where)) {
            const json& token_content = get_or(token, "content", k_null, added_where);
            if (token_content.is_string() &&
                token_content.get_ref<const std::string&>() == content) {
                id = get_or(token, "id", k_null, added_where);
                break;
            }
        }
        set_special(type, id, added_where);
    }
}

// The add_* flags from tokenizer.json's post-processor (and the token names it implies).
void SpecialVocab::load_post_processor(const json& tokenizer, json& config) {
    const std::string where = sources_.path("tokenizer.json") + ": post_processor";
    const auto config_get = [&](const char* key) -> json {
        if (!config.is_object()) return nullptr;
        const auto it = config.find(key);
        return it == config.end() ? json(nullptr) : *it;
    };
    json special_bos = config_get("bos_token");
    json special_cls = config_get("cls_token");
    json special_eos = config_get("eos_token");
    json special_sep = config_get("sep_token");
    if (!truthy(special_bos) && truthy(special_cls) && truthy(config)) {
        config["bos_token"] = special_bos = special_cls;
    }
    if (!truthy(special_eos) && truthy(special_sep) && truthy(config)) {
        config["eos_token"] = special_eos = special_sep;
    }
    const json* post_processor = get(tokenizer, "post_processor", where);
    if (post_processor == nullptr || !truthy(*post_processor)) return;
    const json* listed = get(*post_processor, "processors", where);
    const json single = json::array({*post_processor});
    const json& processors = iterable(listed != nullptr ? *listed : single, where + ": processors");

    for (const json& processor : processors) {
        const json& type = get_or(processor, "type", k_null, where);
        if (py_equal(type, "ByteLevel")) {
            set_add("bos", false, false);
            set_add("eos", false, false);
        } else if (py_equal(type, "RobertaProcessing")) {
            set_add("bos", true, true);
            set_add("eos", true, true);
            set_add("sep", true, true);
            if (!truthy(special_cls) && truthy(config)) {
                special_cls = first_item(
                    get_or(processor, "cls", json::array({special_bos}), where), where + ": cls");
                config["cls_token"] = special_cls;
            }
            if (!truthy(special_sep) && truthy(config)) {
                special_sep = first_item(
                    get_or(processor, "sep", json::array({special_eos}), where), where + ": sep");
                config["sep_token"] = special_sep;
            }
        } else if (py_equal(type, "TemplateProcessing")) {
            // gguf-py's "crude parsing" of the templates, kept crude.
            const json& single_tmpl = get_or(processor, "single", k_empty_array, where);
            const json& pair_tmpl = get_or(processor, "pair", k_empty_array, where);
            const std::string single_where = where + ": single";
            json special_first = nullptr;
            json special_last = nullptr;
            size_t single_len = 0;
            if (single_tmpl.is_array() || single_tmpl.is_object()) {
                single_len = single_tmpl.size();
            } else if (single_tmpl.is_string()) {
                single_len = code_points(single_tmpl.get_ref<const std::string&>());
            } else {
                fail("{}: is {}, expected an array", single_where, describe(single_tmpl));
            }
            if (single_len > 1) {
                if (!single_tmpl.is_array()) {
                    fail("{}: is {}, expected an array", single_where, describe(single_tmpl));
                }
                special_first = nested_id(single_tmpl.front(), "SpecialToken", single_where);
                if (truthy(special_first)) {
                    if (!truthy(config)) {
                        special_bos = special_first;
                    } else if (!in_pair(special_first, special_bos, special_cls)) {
                        if (!truthy(special_bos)) config["bos_token"] = special_bos = special_first;
                        if (!truthy(special_cls)) config["cls_token"] = special_cls = special_first;
                    }
                    set_add("bos", in_pair(special_first, special_bos, special_cls), true);
                }
                special_last = nested_id(single_tmpl.back(), "SpecialToken", single_where);
                if (truthy(special_last)) {
                    if (!truthy(config)) {
                        special_eos = special_last;
                    } else if (!py_equal(special_last, special_eos)) {
                        const auto has = [&](const char* t) {
                            return std::find(types_.begin(), types_.end(), t) != types_.end();
                        };
                        if (!has("eot")) {
                            types_.emplace_back("eot");
                            config["eot_token"] = special_eos;
                        } else if (!has("eom")) {
                            types_.emplace_back("eom");
                            config["eom_token"] = special_eos;
                        }
                        config["eos_token"] = special_eos = special_last;
                    }
                    set_add("eos", py_equal(special_last, special_eos), true);
                }
            }
            if (truthy(pair_tmpl)) {
                const std::string pair_where = where + ": pair";
                if (!pair_tmpl.is_array()) {
                    fail("{}: is {}, expected an array", pair_where, describe(pair_tmpl));
                }
                size_t begin = 0;
                size_t end = pair_tmpl.size();
                if (truthy(special_first) &&
                    py_equal(nested_id(pair_tmpl.front(), "SpecialToken", pair_where),
                             special_first)) {
                    begin = 1;
                }
                if (truthy(special_last) &&
                    py_equal(nested_id(pair_tmpl.back(), "SpecialToken", pair_where),
                             special_last)) {
                    end -= 1;
                }
                if (begin < end) {
                    const json& a = nested_id(pair_tmpl[begin], "Sequence", pair_where);
                    const json& b = nested_id(pair_tmpl[end - 1], "Sequence", pair_where);
                    // A [sep] [eos] B: what lies between A and B decides add_sep.
                    if (py_equal(a, "A") && py_equal(b, "B") && end - begin > 2) {
                        const size_t first = begin + 1;
                        const size_t n_middle = end - begin - 2;
                        bool add_sep = false;
                        const json entry = nested_id(pair_tmpl[first], "SpecialToken", pair_where);
                        if (truthy(entry) && in_pair(entry, special_sep, special_eos) &&
                            !truthy(special_last)) {
                            add_sep = true;
                        }
                        if (n_middle == 2) {
                            const json second =
                                nested_id(pair_tmpl[first + 1], "SpecialToken", pair_where);
                            if (truthy(second) && in_pair(second, special_sep, special_eos)) {
                                add_sep = true;
                            }
                        }
                        set_add("sep", add_sep, true);
                        if (add_sep && !truthy(special_sep) && truthy(config)) {
                            config["sep_token"] = special_eos;
                        }
                    }
                }
            }
        }
    }
}

void SpecialVocab::load_chat_template(const json& config) {
    const HfTokenizerFiles& files = sources_.files();
    json alternative = nullptr;
    if (files.chat_template_jinja) {
        const auto text = [&](const std::string& bytes, const std::string& name) {
            if (!valid_utf8(bytes)) fail("{}: is not valid UTF-8", sources_.path(name));
            return universal_newlines(bytes);
        };
        alternative = text(*files.chat_template_jinja, "chat_template.jinja");
        if (!files.additional_chat_templates.empty()) {
            json list = json::array();
            list.push_back({{"name", "default"}, {"template", alternative}});
            for (const auto& [stem, bytes] : files.additional_chat_templates) {
                list.push_back(
                    {{"name", stem},
                     {"template", text(bytes, "additional_chat_templates/" + stem + ".jinja")}});
            }
            alternative = std::move(list);
        }
    } else if (files.chat_template_json) {
        const std::string where = sources_.path("chat_template.json");
        const json parsed = parse_json(*files.chat_template_json, where);
        alternative = get_or(parsed, "chat_template", k_null, where);
    }
    const auto it = config.find("chat_template");
    const json& chosen = it != config.end() ? *it : alternative;
    if (chosen.is_null() || chosen.is_string() || chosen.is_array()) {
        chat_template_ = chosen;
    } else {
        log_warn("{}: chat_template is {}, ignored", sources_.path("tokenizer_config.json"),
                 describe(chosen));
    }
}

void SpecialVocab::load_from_config_json() {
    const json& config = sources_.input().config;
    if (config.is_null()) return;
    const std::string where = sources_.path("config.json");
    for (const std::string& type : types_) {
        const std::string key = type + "_token_id";
        json id = get_or(config, key, k_null, where);
        if (id.is_null() && config.contains("text_config")) {
            id = get_or(config["text_config"], key, k_null, where + ": text_config");
        }
        set_special(type, id, where);
    }
}

void SpecialVocab::load_merges_txt() {
    if (!sources_.files().merges_txt) return;
    const std::string where = sources_.path("merges.txt");
    const std::string& bytes = *sources_.files().merges_txt;
    if (!valid_utf8(bytes)) fail("{}: is not valid UTF-8", where);
    const std::string text = universal_newlines(bytes);
    std::vector<std::string> merges;
    size_t at = 0;
    bool first = true;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        end = end == std::string::npos ? text.size() : end + 1;
        const std::string line = python_strip(std::string_view(text).substr(at, end - at));
        at = end;
        const bool header = first && line.starts_with('#');
        first = false;
        if (header || line.empty()) continue;
        std::vector<std::string> parts = python_split(line);
        if (parts.size() != 2) {
            log_warn("{}: line \"{}\" is not a merge (two tokens), ignored", where, shown(line));
            continue;
        }
        merges.push_back(parts[0] + " " + parts[1]);
    }
    merges_ = std::move(merges);
}

void SpecialVocab::parse_normalizer(const json& normalizer, const std::string& where) {
    const json& type = get_or(normalizer, "type", k_null, where);
    if (py_equal(type, "Lowercase")) {
        lowercase_ = true;
    } else if (py_equal(type, "StripAccents")) {
        strip_accents_ = true;
    } else if (py_equal(type, "BertNormalizer")) {
        if (const json* v = get(normalizer, "lowercase", where)) lowercase_ = *v;
        if (const json* v = get(normalizer, "strip_accents", where)) strip_accents_ = *v;
    } else if (py_equal(type, "Sequence")) {
        const std::string list_where = where + ": normalizers";
        for (const json& inner :
             iterable(get_or(normalizer, "normalizers", k_empty_array, where), list_where)) {
            parse_normalizer(inner, list_where);
        }
    }
}

void SpecialVocab::add_template(KeyList& keys, const std::string& key, const json& value) const {
    if (!truthy(value)) return;  // add_string skips empty values
    if (!value.is_string()) {
        fail("{}: chat template for {} is {}, expected a string",
             sources_.path("tokenizer_config.json"), key, describe(value));
    }
    keys.set_string(key, value.get<std::string>());
}

void SpecialVocab::add_to(KeyList& keys) const {
    if (!merges_.empty()) {
        keys.set_strings("tokenizer.ggml.merges", merges_);
    } else if (load_merges_) {
        log_warn("{}: no merges found, the tokenizer may not work", sources_.input().dir);
    }
    for (const auto& [type, id] : ids_) {
        const std::string key = id_key(type);
        if (!key.empty()) keys.set_uint32(key, id);
    }
    for (const auto& [type, value] : add_) {
        const std::string key = add_key(type);
        if (!key.empty()) keys.set_bool(key, value);
    }
    if (chat_template_.is_string()) {
        keys.set_string("tokenizer.chat_template", chat_template_.get<std::string>());
    } else if (chat_template_.is_array()) {
        const std::string where = "chat_template";
        std::optional<json> default_template;
        std::vector<std::string> names;  // a set in gguf-py: its order is arbitrary
        for (const json& choice : chat_template_) {
            const json& name_value = get_or(choice, "name", k_empty_string, where);
            if (!name_value.is_string()) {
                fail("{}: a chat template's name is {}, expected a string",
                     sources_.path("tokenizer_config.json"), describe(name_value));
            }
            const std::string name = template_key_name(name_value.get_ref<const std::string&>());
            const json& text = get_or(choice, "template", k_null, where);
            if (name.empty() || text.is_null()) continue;
            if (name == "default") {
                default_template = text;
            } else {
                if (std::find(names.begin(), names.end(), name) == names.end())
                    names.push_back(name);
                add_template(keys, "tokenizer.chat_template." + name, text);
            }
        }
        keys.set_strings("tokenizer.chat_templates", names);
        if (default_template) add_template(keys, "tokenizer.chat_template", *default_template);
    }
    if (lowercase_ && !lowercase_->is_null()) {
        keys.set_bool("tokenizer.ggml.normalizer.lowercase", truthy(*lowercase_));
    }
    if (strip_accents_ && !strip_accents_->is_null()) {
        keys.set_bool("tokenizer.ggml.normalizer.strip_accents", truthy(*strip_accents_));
    }
}

}  // namespace

void add_special_vocab(Sources& sources, const SpecialVocabOptions& options, KeyList& keys) {
    SpecialVocab(sources, options).add_to(keys);
}

}  // namespace edgeq::hf_tokenizer
