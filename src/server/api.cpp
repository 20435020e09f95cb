// Request bodies of the OpenAI API, checked field by field.
#include "edgeq/server/api.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace edgeq::server {

using nlohmann::json;

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
    json error = {{"message", message},
                  {"type", type},
                  {"param", param.empty() ? json(nullptr) : json(param)},
                  {"code", code.empty() ? json(nullptr) : json(code)}};
    return json{{"error", std::move(error)}};
}

json error_body(const ApiError& e) {
    return error_body(e.what(), e.type, e.param, e.code);
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) {
    throw ApiError(400, fmt::format("'{}' {}", param, message), param);
}

// The field, or nullptr when it is absent or null (null means "not given", as in OpenAI's API).
const json* field(const json& body, const char* name) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return nullptr;
    return &*it;
}

double number_in(const json& v, const std::string& name, double lo, double hi) {
    if (!v.is_number()) bad(name, "must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
        bad(name, fmt::format("must be between {} and {} (got {})", lo, hi, x));
    return x;
}

int64_t integer_in(const json& v, const std::string& name, int64_t lo, int64_t hi) {
    int64_t x = 0;
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            bad(name, fmt::format("must be between {} and {}", lo, hi));
        x = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
        x = v.get<int64_t>();
    } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
               v.get<double>() == std::floor(v.get<double>()) &&
               std::fabs(v.get<double>()) < 9e15) {
        x = static_cast<int64_t>(v.get<double>());
    } else {
        bad(name, "must be an integer");
    }
    if (x < lo || x > hi) bad(name, fmt::format("must be between {} and {} (got {})", lo, hi, x));
    return x;
}

bool boolean(const json& v, const std::string& name) {
    if (!v.is_boolean()) bad(name, "must be a boolean");
    return v.get<bool>();
}

const std::string& string(const json& v, const std::string& name) {
    if (!v.is_string()) bad(name, "must be a string");
    return v.get_ref<const std::string&>();
}

constexpr int64_t k_max_tokens_limit = int64_t{1} << 30;
constexpr size_t k_max_stops = 16;
constexpr size_t k_max_stop_bytes = 1024;
constexpr size_t k_max_messages = 4096;
constexpr size_t k_max_inputs = 1024;

// The fields chat and text completions share.
void parse_common(const json& body, CompletionRequest& r) {
    if (const json* v = field(body, "model")) r.model = string(*v, "model");
    if (const json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
    if (const json* v = field(body, "stream_options")) {
        if (!v->is_object()) bad("stream_options", "must be an object");
        if (const json* u = field(*v, "include_usage"))
            r.include_usage = boolean(*u, "stream_options.include_usage");
    }
    SamplingParams& s = r.sampling;
    if (const json* v = field(body, "temperature"))
        s.temperature = static_cast<float>(number_in(*v, "temperature", 0.0, 10.0));
    if (const json* v = field(body, "top_p"))
        s.top_p = static_cast<float>(number_in(*v, "top_p", 0.0, 1.0));
    if (const json* v = field(body, "top_k"))
        s.top_k = static_cast<int32_t>(integer_in(*v, "top_k", -1, 1 << 30));
    if (const json* v = field(body, "min_p"))
        s.min_p = static_cast<float>(number_in(*v, "min_p", 0.0, 1.0));
    if (const json* v = field(body, "presence_penalty"))
        s.presence_penalty = static_cast<float>(number_in(*v, "presence_penalty", -2.0, 2.0));
    if (const json* v = field(body, "frequency_penalty"))
        s.frequency_penalty = static_cast<float>(number_in(*v, "frequency_penalty", -2.0, 2.0));
    if (const json* v = field(body, "repeat_penalty"))
        s.repeat_penalty = static_cast<float>(number_in(*v, "repeat_penalty", 0.01, 10.0));
    if (const json* v = field(body, "seed"))
        s.seed = static_cast<uint64_t>(integer_in(*v, "seed", std::numeric_limits<int64_t>::min(),
                                                  std::numeric_limits<int64_t>::max()));
    for (const char* name : {"max_tokens", "max_completion_tokens", "n_predict"}) {
        if (const json* v = field(body, name))
            r.max_tokens = static_cast<int32_t>(integer_in(*v, name, 1, k_max_tokens_limit));
    }
    if (const json* v = field(body, "n")) integer_in(*v, "n", 1, 1);
    if (const json* v = field(body, "ignore_eos")) r.ignore_eos = boolean(*v, "ignore_eos");
    if (const json* v = field(body, "stop")) {
        if (v->is_string()) {
            r.stops.push_back(v->get<std::string>());
        } else if (v->is_array()) {
            if (v->size() > k_max_stops)
                bad("stop", fmt::format("has at most {} strings", k_max_stops));
            for (size_t i = 0; i < v->size(); ++i)
                r.stops.push_back(string((*v)[i], fmt::format("stop[{}]", i)));
        } else {
            bad("stop", "must be a string or an array of strings");
        }
        for (const std::string& stop : r.stops)
            if (stop.size() > k_max_stop_bytes)
                bad("stop", fmt::format("strings have at most {} bytes", k_max_stop_bytes));
    }
    if (const json* v = field(body, "logprobs")) {
        if (v->is_boolean() ? v->get<bool>() : !v->is_number() || v->get<double>() != 0.0)
            throw ApiError(400, "'logprobs' is not supported by edgeq serve", "logprobs");
    }
    if (const json* v = field(body, "tools")) {
        if (!v->is_array()) bad("tools", "must be an array");
        if (!v->empty()) throw ApiError(400, "'tools' is not supported by edgeq serve", "tools");
    }
    if (const json* v = field(body, "response_format")) {
        if (!v->is_object()) bad("response_format", "must be an object");
        const json* type = field(*v, "type");
        if (type == nullptr || string(*type, "response_format.type") != "text")
            throw ApiError(400,
                           "'response_format' other than {\"type\": \"text\"} is not supported",
                           "response_format");
    }
}

void require_object(const json& body) {
    if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
}

std::string message_content(const json& v, const std::string& name) {
    if (v.is_string()) return v.get<std::string>();
    if (!v.is_array()) bad(name, "must be a string or an array of content parts");
    std::string text;
    for (size_t i = 0; i < v.size(); ++i) {
        const std::string part = fmt::format("{}[{}]", name, i);
        const json& p = v[i];
        if (!p.is_object()) bad(part, "must be an object");
        const json* type = field(p, "type");
        if (type == nullptr) bad(part + ".type", "is required");
        if (string(*type, part + ".type") != "text")
            bad(part + ".type", "must be \"text\" (edgeq serve takes text only)");
        const json* t = field(p, "text");
        if (t == nullptr) bad(part + ".text", "is required");
        text += string(*t, part + ".text");
    }
    return text;
}

}  // namespace

CompletionRequest parse_chat_request(const json& body, const SamplingParams& defaults) {
    require_object(body);
    CompletionRequest r;
    r.sampling = defaults;
    parse_common(body, r);
    const json* messages = field(body, "messages");
    if (messages == nullptr) bad("messages", "is required");
    if (!messages->is_array()) bad("messages", "must be an array");
    if (messages->empty()) bad("messages", "must not be empty");
    if (messages->size() > k_max_messages)
        bad("messages", fmt::format("has at most {} entries", k_max_messages));
    for (size_t i = 0; i < messages->size(); ++i) {
        const std::string name = fmt::format("messages[{}]", i);
        const json& m = (*messages)[i];
        if (!m.is_object()) bad(name, "must be an object");
        const json* role = field(m, "role");
        if (role == nullptr) bad(name + ".role", "is required");
        ChatMessage message;
        message.role = string(*role, name + ".role");
        if (message.role == "developer") message.role = "system";
        if (message.role != "system" && message.role != "user" && message.role != "assistant" &&
            message.role != "tool")
            bad(name + ".role", "must be one of system, developer, user, assistant, tool");
        const json* content = field(m, "content");
        if (content == nullptr && message.role != "assistant")
            bad(name + ".content", "is required");
        if (content != nullptr) message.content = message_content(*content, name + ".content");
        r.messages.push_back(std::move(message));
    }
    return r;
}

CompletionRequest parse_completion_request(const json& body, const SamplingParams& defaults) {
    require_object(body);
    CompletionRequest r;
    r.sampling = defaults;
    parse_common(body, r);
    const json* prompt = field(body, "prompt");
    if (prompt == nullptr) bad("prompt", "is required");
    if (prompt->is_string()) {
        r.prompt = prompt->get<std::string>();
    } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
        r.prompt = (*prompt)[0].get<std::string>();
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
        for (size_t i = 0; i < prompt->size(); ++i)
            r.prompt_ids.push_back(static_cast<int32_t>(
                integer_in((*prompt)[i], fmt::format("prompt[{}]", i), 0, (1 << 30))));
    } else {
        bad("prompt", "must be a string, an array of one string or an array of token ids");
    }
    if (const json* v = field(body, "echo"); v != nullptr && boolean(*v, "echo"))
        throw ApiError(400, "'echo' is not supported by edgeq serve", "echo");
    if (const json* v = field(body, "suffix"); v != nullptr && !string(*v, "suffix").empty())
        throw ApiError(400, "'suffix' is not supported by edgeq serve", "suffix");
    if (const json* v = field(body, "best_of")) integer_in(*v, "best_of", 1, 1);
    return r;
}

EmbeddingRequest parse_embedding_request(const json& body) {
    require_object(body);
    EmbeddingRequest r;
    if (const json* v = field(body, "model")) r.model = string(*v, "model");
    const json* input = field(body, "input");
    if (input == nullptr) bad("input", "is required");
    if (input->is_string()) {
        r.inputs.push_back(input->get<std::string>());
    } else if (input->is_array()) {
        if (input->empty()) bad("input", "must not be empty");
        if (input->size() > k_max_inputs)
            bad("input", fmt::format("has at most {} strings", k_max_inputs));
        for (size_t i = 0; i < input->size(); ++i)
            r.inputs.push_back(string((*input)[i], fmt::format("input[{}]", i)));
    } else {
        bad("input", "must be a string or an array of strings");
    }
    for (size_t i = 0; i < r.inputs.size(); ++i)
        if (r.inputs[i].empty()) bad(fmt::format("input[{}]", i), "must not be empty");
    if (const json* v = field(body, "encoding_format")) {
        const std::string& format = string(*v, "encoding_format");
        if (format != "float" && format != "base64")
            bad("encoding_format", "must be \"float\" or \"base64\"");
        r.base64 = format == "base64";
    }
    if (field(body, "dimensions") != nullptr)
        throw ApiError(400, "'dimensions' is not supported by edgeq serve", "dimensions");
    return r;
}

TokenizeRequest parse_tokenize_request(const json& body) {
    require_object(body);
    TokenizeRequest r;
    const json* content = field(body, "content");
    if (content == nullptr) bad("content", "is required");
    r.content = string(*content, "content");
    if (const json* v = field(body, "add_special")) r.add_special = boolean(*v, "add_special");
    if (const json* v = field(body, "parse_special"))
        r.parse_special = boolean(*v, "parse_special");
    if (const json* v = field(body, "with_pieces")) r.with_pieces = boolean(*v, "with_pieces");
    return r;
}

std::vector<int32_t> parse_detokenize_request(const json& body, int32_t n_vocab) {
    require_object(body);
    const json* tokens = field(body, "tokens");
    if (tokens == nullptr) bad("tokens", "is required");
    if (!tokens->is_array()) bad("tokens", "must be an array of token ids");
    std::vector<int32_t> ids;
    for (size_t i = 0; i < tokens->size(); ++i)
        ids.push_back(static_cast<int32_t>(
            integer_in((*tokens)[i], fmt::format("tokens[{}]", i), 0, n_vocab - 1)));
    return ids;
}

json parse_body(std::string_view body) {
    json value;
    try {
        value = json::parse(body.begin(), body.end());
    } catch (const json::exception& e) {
        // parse_error, and out_of_range for a number beyond double's range (found by fuzzing).
        throw ApiError(400, fmt::format("the request body is not valid JSON: {}", e.what()));
    }
    require_object(value);
    return value;
}

std::string dump(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string base64_encode(const void* data, size_t n_bytes) {
    static constexpr char k_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto* p = static_cast<const uint8_t*>(data);
    std::string out;
    out.reserve((n_bytes + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n_bytes; i += 3) {
        const uint32_t v = uint32_t{p[i]} << 16 | uint32_t{p[i + 1]} << 8 | p[i + 2];
        for (int s = 18; s >= 0; s -= 6) out += k_alphabet[(v >> s) & 63];
    }
    if (const size_t rest = n_bytes - i; rest > 0) {
        const uint32_t v = uint32_t{p[i]} << 16 | (rest == 2 ? uint32_t{p[i + 1]} << 8 : 0);
        out += k_alphabet[(v >> 18) & 63];
        out += k_alphabet[(v >> 12) & 63];
        out += rest == 2 ? k_alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    // Every byte of the longer string is visited whatever the contents; a length difference
    // is folded into the result rather than returned early.
    const size_t n = std::max(a.size(), b.size());
    unsigned diff = a.size() == b.size() ? 0u : 1u;
    for (size_t i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned>(x ^ y);
    }
    volatile unsigned result = diff;
    return result == 0;
}

}  // namespace edgeq::server
