#include "hf-provenance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>
#include <vector>

namespace edgeq::hf {
namespace {

bool full_match(const std::string& s, const std::regex& re) {
    return std::regex_match(s, re);
}

// "meta-llama" -> "Meta Llama": words that are all lower case (and not versions or numbers)
// get a capital.
std::string id_to_title(const std::string& s) {
    static const std::regex k_keep(R"(^(v\d+(?:\.\d+)*|\d.*)$)");
    std::string spaced = s;
    std::replace(spaced.begin(), spaced.end(), '-', ' ');
    std::string out;
    size_t i = 0;
    while (i < spaced.size()) {
        while (i < spaced.size() && std::isspace(static_cast<unsigned char>(spaced[i]))) ++i;
        size_t j = i;
        while (j < spaced.size() && !std::isspace(static_cast<unsigned char>(spaced[j]))) ++j;
        if (j == i) break;
        std::string word = spaced.substr(i, j - i);
        const bool all_lower =
            std::none_of(word.begin(), word.end(),
                         [](char c) { return std::isupper(static_cast<unsigned char>(c)); }) &&
            std::any_of(word.begin(), word.end(),
                        [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
        if (all_lower && !std::regex_match(word, k_keep))
            word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
        out += (out.empty() ? "" : " ") + word;
        i = j;
    }
    return out;
}

struct Components {
    std::string name;
    std::string organization;
    std::optional<std::string> basename, finetune, version, size_label;
};

enum Tag : unsigned { k_version = 1, k_type = 2, k_size = 4, k_finetune = 8, k_basename = 16 };

// Splits a model id ("TinyLlama-1.1B-Chat-v1.0") into basename, size label, finetune and version.
Components id_components(const std::string& model_id, int64_t total) {
    Components c;
    if (model_id.find(' ') != std::string::npos) {
        c.name = model_id;
        return c;
    }
    std::string name = model_id;
    if (const size_t slash = model_id.find('/'); slash != std::string::npos) {
        c.organization = model_id.substr(0, slash);
        name = model_id.substr(slash + 1);
        if (!c.organization.empty() && c.organization[0] == '.') c.organization.clear();
    }
    c.name = name;
    std::vector<std::string> parts;
    for (size_t i = 0; i <= name.size();) {
        const size_t j = std::min(name.find('-', i), name.size());
        if (j > i) parts.push_back(name.substr(i, j - i));
        i = j + 1;
    }
    static const std::regex k_version_re(R"((v|iter)?\d+([.]\d+)*)", std::regex::icase);
    static const std::regex k_type_re(R"(i?q\d(_\w)*|b?fp?(16|32))", std::regex::icase);
    static const std::regex k_size_re(
        R"((([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl))",
        std::regex::icase);
    static const std::regex k_finetune_re(R"(chat|instruct|vision|lora)", std::regex::icase);
    std::vector<unsigned> tags(parts.size(), 0);
    for (size_t i = 0; i < parts.size(); ++i) {
        std::string& p = parts[i];
        if (full_match(p, k_version_re)) {
            tags[i] |= k_version;
        } else if (full_match(p, k_type_re)) {
            tags[i] |= k_type;
            for (char& ch : p) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        } else if (i > 0 && full_match(p, k_size_re)) {
            std::replace(p.begin(), p.end(), '_', '.');
            if (std::isdigit(static_cast<unsigned char>(p.back()))) {
                // "7b1" -> "7.1b"
                size_t k = p.size() - 1;
                while (k > 0 && std::isdigit(static_cast<unsigned char>(p[k]))) --k;
                if (std::isalpha(static_cast<unsigned char>(p[k])))
                    p = p.substr(0, k) + "." + p.substr(k + 1) + p[k];
            }
            if (p.size() >= 2 && std::isdigit(static_cast<unsigned char>(p[p.size() - 2])) &&
                std::string("kmbt").find(p.back()) != std::string::npos) {
                p.back() = static_cast<char>(std::toupper(static_cast<unsigned char>(p.back())));
            }
            if (total > 0 && p.size() >= 2) {
                const size_t magnitude = std::string(" KMBT").find(p.back());
                try {
                    if (magnitude != std::string::npos && magnitude > 0) {
                        const double label = std::stod(p.substr(0, p.size() - 1)) *
                                             std::pow(1000.0, static_cast<double>(magnitude));
                        if (std::fabs(label - static_cast<double>(total)) >
                            static_cast<double>(7 * total / 8)) {
                            tags[i] |= k_finetune;
                            p.back() = static_cast<char>(
                                std::tolower(static_cast<unsigned char>(p.back())));
                        }
                    }
                } catch (const std::exception&) {
                }
            }
            if (tags[i] == 0) tags[i] |= k_size;
        } else if (i > 0 && full_match(p, k_finetune_re)) {
            tags[i] |= k_finetune;
        }
    }
    const bool any_size_digit = [&] {
        for (size_t i = 0; i < parts.size(); ++i) {
            if ((tags[i] & k_size) && std::any_of(parts[i].begin(), parts[i].end(), [](char ch) {
                    return std::isdigit(static_cast<unsigned char>(ch));
                }))
                return true;
        }
        return false;
    }();
    if (any_size_digit) {
        for (size_t i = 0; i < parts.size(); ++i) {
            if ((tags[i] & k_size) && std::all_of(parts[i].begin(), parts[i].end(), [](char ch) {
                    return std::isalpha(static_cast<unsigned char>(ch));
                }))
                tags[i] &= ~k_size;
        }
    }
    bool at_start = true;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (at_start && ((tags[i] == 0 && std::isalpha(static_cast<unsigned char>(parts[i][0]))) ||
                         (tags[i] & k_version))) {
            tags[i] |= k_basename;
        } else {
            at_start = false;
            if (tags[i] == 0) tags[i] |= k_finetune;
        }
    }
    for (size_t i = parts.size(); i-- > 0;) {
        if ((tags[i] & k_basename) && (tags[i] & ~k_basename)) {
            tags[i] &= ~k_basename;
        } else {
            break;
        }
    }
    auto join = [&](unsigned tag, unsigned exclude, bool distinct) -> std::optional<std::string> {
        std::string out;
        std::set<std::string> seen;
        for (size_t i = 0; i < parts.size(); ++i) {
            if (!(tags[i] & tag) || (tags[i] & exclude)) continue;
            if (distinct && !seen.insert(parts[i]).second) continue;
            out += (out.empty() ? "" : "-") + parts[i];
        }
        if (out.empty()) return std::nullopt;
        return out;
    };
    c.basename = join(k_basename, 0, false);
    c.size_label = join(k_size, 0, true);
    c.finetune = join(k_finetune, 0, false);
    c.version = join(k_version, k_basename, false);
    if (!c.size_label && !c.finetune && !c.version) c.basename.reset();
    return c;
}

}  // namespace

std::string size_label(int64_t n) {
    double scaled = static_cast<double>(n);
    char suffix = 'K';
    if (n > 1000000000000LL) {
        scaled /= 1e12;
        suffix = 'T';
    } else if (n > 1000000000LL) {
        scaled /= 1e9;
        suffix = 'B';
    } else if (n > 1000000LL) {
        scaled /= 1e6;
        suffix = 'M';
    } else {
        scaled /= 1e3;
    }
    std::string digits = std::to_string(static_cast<int64_t>(std::nearbyint(scaled)));
    digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
    const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
    return fmt::format("{:.{}f}{}", scaled, fix, suffix);
}

GgufMetadata provenance_metadata(const std::string& dir, const nlohmann::json& config,
                                 int64_t n_parameters) {
    std::optional<Components> found;
    if (config.contains("_name_or_path") && config["_name_or_path"].is_string()) {
        const std::string id = config["_name_or_path"].get<std::string>();
        if (!id.empty() && std::count(id.begin(), id.end(), '/') <= 1)
            found = id_components(id, n_parameters);
    }
    const std::string dir_name =
        std::filesystem::path(dir).lexically_normal().filename().string().empty()
            ? std::filesystem::path(dir).lexically_normal().parent_path().filename().string()
            : std::filesystem::path(dir).lexically_normal().filename().string();
    const Components from_dir = id_components(dir_name, n_parameters);
    Components c = found ? *found : from_dir;
    if (found) {  // the directory fills what the id did not
        if (!c.basename) c.basename = from_dir.basename;
        if (!c.finetune) c.finetune = from_dir.finetune;
        if (!c.version) c.version = from_dir.version;
        if (!c.size_label) c.size_label = from_dir.size_label;
    }
    GgufMetadata out;
    const std::string name = c.name.empty() ? dir_name : id_to_title(c.name);
    out.emplace_back("general.name", GgufValue::make_string(name.empty() ? dir_name : name));
    if (c.version) out.emplace_back("general.version", GgufValue::make_string(*c.version));
    if (!c.organization.empty())
        out.emplace_back("general.organization",
                         GgufValue::make_string(id_to_title(c.organization)));
    if (c.finetune) out.emplace_back("general.finetune", GgufValue::make_string(*c.finetune));
    if (c.basename) out.emplace_back("general.basename", GgufValue::make_string(*c.basename));
    out.emplace_back(
        "general.size_label",
        GgufValue::make_string(c.size_label ? *c.size_label : size_label(n_parameters)));
    return out;
}

}  // namespace edgeq::hf
