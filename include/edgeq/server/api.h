// The OpenAI-compatible request bodies, checked field by field, and the JSON edgeq answers with.
//
//   CompletionRequest r = parse_chat_request(nlohmann::json::parse(body), defaults);
//   // r.messages, r.sampling, r.max_tokens, r.stops, r.stream ...
//
// A bad field is an ApiError naming it (param) with the HTTP status to answer; error_body()
// gives OpenAI's error object {"error": {"message", "type", "param", "code"}}. Unknown fields
// are ignored, as OpenAI's clients send fields a server may not know.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/runtime/sampler.h"
#include "edgeq/tokenizer/chat-template.h"

namespace edgeq::server {

// A request the server refuses: the HTTP status, OpenAI's error type and code, and the field.
class ApiError : public std::runtime_error {
  public:
    ApiError(int status, std::string message, std::string param = {},
             std::string type = "invalid_request_error", std::string code = {})
        : std::runtime_error(message),
          status(status),
          param(std::move(param)),
          type(std::move(type)),
          code(std::move(code)) {}
    int status;
    std::string param;
    std::string type;
    std::string code;
};

// {"error": {"message", "type", "param", "code"}} (param and code null when empty).
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = {}, const std::string& code = {});
nlohmann::json error_body(const ApiError& e);

// A chat or text completion request.
struct CompletionRequest {
    std::string model;                  // empty: not given
    std::vector<ChatMessage> messages;  // chat
    std::string prompt;                 // completions: text ...
    std::vector<int32_t> prompt_ids;    // ... or token ids (non-empty: used instead of text)
    SamplingParams sampling;
    int32_t max_tokens = -1;  // -1: not given (until the end of generation or the context)
    std::vector<std::string> stops;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    bool ignore_eos = false;     // llama.cpp's extension: generate through end-of-generation
};

struct EmbeddingRequest {
    std::string model;
    std::vector<std::string> inputs;  // one embedding each
    bool base64 = false;              // encoding_format "base64": little-endian float32
};

struct TokenizeRequest {
    std::string content;
    bool add_special = false;
    bool parse_special = true;
    bool with_pieces = false;
};

// Parsers of the request bodies. `defaults` are the server's sampling defaults (from its
// command line); a field of the request overrides them. Throw ApiError (status 400).
CompletionRequest parse_chat_request(const nlohmann::json& body, const SamplingParams& defaults);
CompletionRequest parse_completion_request(const nlohmann::json& body,
                                           const SamplingParams& defaults);
EmbeddingRequest parse_embedding_request(const nlohmann::json& body);
TokenizeRequest parse_tokenize_request(const nlohmann::json& body);
std::vector<int32_t> parse_detokenize_request(const nlohmann::json& body, int32_t n_vocab);

// Parses a request body as a JSON object; malformed JSON (invalid UTF-8 included) or another
// JSON type is an ApiError.
nlohmann::json parse_body(std::string_view body);

// JSON text that never throws: invalid UTF-8 in strings becomes U+FFFD.
std::string dump(const nlohmann::json& value);

// Base64 (RFC 4648, with padding) of bytes.
std::string base64_encode(const void* data, size_t n_bytes);

// Compares two secrets in time that depends only on their lengths, not on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace edgeq::server
