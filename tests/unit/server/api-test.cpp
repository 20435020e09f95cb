// The request parsers against hand-written expectations: each bad field is a 400 naming it,
// each good one lands in the request; base64 against a direct bit-by-bit encoding; the
// constant-time compare against ==; the Prometheus histogram against counts made here.
#include "edgeq/server/api.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>

#include "edgeq/server/metrics.h"
#include "test-random.h"

namespace edgeq::server {
namespace {

using nlohmann::json;

// The ApiError a parse throws, or a failure if it throws none.
ApiError error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const ApiError& e) {
        return e;
    }
    ADD_FAILURE() << "no ApiError";
    return ApiError(0, "");
}

json chat(json extra) {
    json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    for (auto& [k, v] : extra.items()) body[k] = v;
    return body;
}

TEST(ServerApi, ChatFieldsLand) {
    const SamplingParams defaults;
    const CompletionRequest r =
        parse_chat_request(chat({{"temperature", 0.5},
                                 {"top_p", 0.9},
                                 {"top_k", 7},
                                 {"min_p", 0.1},
                                 {"max_tokens", 12},
                                 {"stop", {"a", "bc"}},
                                 {"seed", -3},
                                 {"presence_penalty", 1.5},
                                 {"frequency_penalty", -0.5},
                                 {"stream", true},
                                 {"stream_options", {{"include_usage", true}}},
                                 {"ignore_eos", true},
                                 {"unknown_field", {1, 2}}}),
                           defaults);
    EXPECT_EQ(r.model, "m");
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].role, "user");
    EXPECT_EQ(r.messages[0].content, "hi");
    EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
    EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
    EXPECT_EQ(r.sampling.top_k, 7);
    EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
    EXPECT_EQ(r.max_tokens, 12);
    EXPECT_EQ(r.stops, (std::vector<std::string>{"a", "bc"}));
    EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(int64_t{-3}));
    EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 1.5f);
    EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
    EXPECT_TRUE(r.ignore_eos);

    // Absent and null fields keep the server's defaults.
    SamplingParams server_defaults;
    server_defaults.temperature = 0.25f;
    const CompletionRequest d =
        parse_chat_request(chat({{"temperature", nullptr}}), server_defaults);
    EXPECT_FLOAT_EQ(d.sampling.temperature, 0.25f);
    EXPECT_EQ(d.max_tokens, -1);
    EXPECT_FALSE(d.stream);

    // Content parts are joined; developer is a system message.
    const CompletionRequest parts = parse_chat_request(
        {{"messages",
          {{{"role", "developer"}, {"content", "sys"}},
           {{"role", "user"},
            {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}}}}},
        defaults);
    EXPECT_EQ(parts.messages[0].role, "system");
    EXPECT_EQ(parts.messages[1].content, "ab");
}

TEST(ServerApi, EveryBadFieldIsA400NamingIt) {
    const SamplingParams defaults;
    const std::vector<std::pair<json, std::string>> cases = {
        {chat({{"temperature", "hot"}}), "temperature"},
        {chat({{"temperature", -0.1}}), "temperature"},
        {chat({{"top_p", 1.5}}), "top_p"},
        {chat({{"top_k", 2.5}}), "top_k"},
        {chat({{"min_p", -1}}), "min_p"},
        {chat({{"max_tokens", -1}}), "max_tokens"},
        {chat({{"max_tokens", 0}}), "max_tokens"},
        {chat({{"max_tokens", 1e15}}), "max_tokens"},
        {chat({{"max_tokens", "12"}}), "max_tokens"},
        {chat({{"max_completion_tokens", -5}}), "max_completion_tokens"},
        {chat({{"stop", 3}}), "stop"},
        {chat({{"stop", {"a", 1}}}), "stop[1]"},
        {chat({{"seed", "x"}}), "seed"},
        {chat({{"presence_penalty", 3}}), "presence_penalty"},
        {chat({{"frequency_penalty", true}}), "frequency_penalty"},
        {chat({{"stream", "yes"}}), "stream"},
        {chat({{"n", 2}}), "n"},
        {chat({{"ignore_eos", 1}}), "ignore_eos"},
        {chat({{"model", 5}}), "model"},
        {chat({{"logprobs", true}}), "logprobs"},
        {chat({{"messages", "hi"}}), "messages"},
        {chat({{"messages", json::array()}}), "messages"},
        {chat({{"messages", {{{"content", "x"}}}}}), "messages[0].role"},
        {chat({{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), "messages[0].role"},
        {chat({{"messages", {{{"role", "user"}}}}}), "messages[0].content"},
        {chat({{"messages", {{{"role", "user"}, {"content", 5}}}}}), "messages[0].content"},
        {chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}),
         "messages[0].content[0].type"},
        {{{"model", "m"}}, "messages"},
    };
    for (const auto& [body, param] : cases) {
        SCOPED_TRACE(body.dump());
        const ApiError e = error_of([&] { parse_chat_request(body, defaults); });
        EXPECT_EQ(e.status, 400);
        EXPECT_EQ(e.param, param);
        EXPECT_NE(std::string(e.what()).find(param), std::string::npos) << e.what();
    }
    EXPECT_EQ(error_of([&] { parse_chat_request(json::array(), defaults); }).status, 400);
}

TEST(ServerApi, CompletionPrompts) {
    const SamplingParams defaults;
    EXPECT_EQ(parse_completion_request({{"prompt", "abc"}}, defaults).prompt, "abc");
    EXPECT_EQ(parse_completion_request({{"prompt", {"abc"}}}, defaults).prompt, "abc");
    EXPECT_EQ(parse_completion_request({{"prompt", {1, 2, 3}}}, defaults).prompt_ids,
              (std::vector<int32_t>{1, 2, 3}));
    EXPECT_EQ(error_of([&] {
                  parse_completion_request({{"max_tokens", 3}}, defaults);
              }).param,
              "prompt");
    EXPECT_EQ(error_of([&] {
                  parse_completion_request({{"prompt", {1, -2}}}, defaults);
              }).param,
              "prompt[1]");
    EXPECT_EQ(error_of([&] {
                  parse_completion_request({{"prompt", 5}}, defaults);
              }).param,
              "prompt");
    EXPECT_EQ(error_of([&] {
                  parse_completion_request({{"prompt", "a"}, {"echo", true}}, defaults);
              }).param,
              "echo");
}

TEST(ServerApi, EmbeddingsTokenizeDetokenize) {
    const EmbeddingRequest e =
        parse_embedding_request({{"input", {"a", "b"}}, {"encoding_format", "base64"}});
    EXPECT_EQ(e.inputs, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(e.base64);
    EXPECT_EQ(error_of([] { parse_embedding_request({{"input", {"a", ""}}}); }).param, "input[1]");
    EXPECT_EQ(error_of([] { parse_embedding_request({{"input", 3}}); }).param, "input");
    EXPECT_EQ(error_of([] {
                  parse_embedding_request({{"input", "a"}, {"encoding_format", "hex"}});
              }).param,
              "encoding_format");
    EXPECT_EQ(parse_tokenize_request({{"content", "x"}, {"add_special", true}}).add_special, true);
    EXPECT_EQ(error_of([] { parse_tokenize_request({{"content", 1}}); }).param, "content");
    EXPECT_EQ(parse_detokenize_request({{"tokens", {0, 9}}}, 10), (std::vector<int32_t>{0, 9}));
    EXPECT_EQ(error_of([] {
                  parse_detokenize_request({{"tokens", {0, 10}}}, 10);
              }).param,
              "tokens[1]");
}

TEST(ServerApi, BodiesThatAreNotJsonObjects) {
    for (const char* body :
         {"{bad", "", "[1,2]", "\"str\"", "{\"a\": \"\xff\xfe\"}", "{\"a\":1}x",
          "{\"max_tokens\": 1e999}"}) {  // beyond double's range: found by the fuzzer
        SCOPED_TRACE(body);
        EXPECT_EQ(error_of([&] { parse_body(body); }).status, 400);
    }
    EXPECT_EQ(parse_body("{\"a\": \"\xc3\xa9\"}")["a"], "\xc3\xa9");
    // Invalid UTF-8 in output never throws.
    EXPECT_EQ(dump(json{{"t", std::string("a\xff")}}), "{\"t\":\"a\xef\xbf\xbd\"}");
    const json e = error_body(ApiError(400, "bad", "max_tokens"));
    EXPECT_EQ(e["error"]["message"], "bad");
    EXPECT_EQ(e["error"]["param"], "max_tokens");
    EXPECT_EQ(e["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(e["error"]["code"].is_null());
}

// Base64 by its definition: the bits, six at a time.
std::string base64_reference(const std::vector<uint8_t>& bytes) {
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string bits;
    for (uint8_t b : bytes)
        for (int i = 7; i >= 0; --i) bits += ((b >> i) & 1) ? '1' : '0';
    while (bits.size() % 6 != 0) bits += '0';
    std::string out;
    for (size_t i = 0; i < bits.size(); i += 6)
        out += alphabet[std::stoi(bits.substr(i, 6), nullptr, 2)];
    while (out.size() % 4 != 0) out += '=';
    return out;
}

TEST(ServerApi, Base64MatchesTheDefinition) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    EXPECT_EQ(base64_encode("Man", 3), "TWFu");
    EXPECT_EQ(base64_encode("Ma", 2), "TWE=");
    EXPECT_EQ(base64_encode("M", 1), "TQ==");
    for (int n = 0; n < 40; ++n) {
        std::vector<uint8_t> bytes(static_cast<size_t>(n));
        for (auto& b : bytes) b = static_cast<uint8_t>(random.uniform_int(0, 255));
        EXPECT_EQ(base64_encode(bytes.data(), bytes.size()), base64_reference(bytes));
    }
}

TEST(ServerApi, ConstantTimeEqualIsEquality) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    EXPECT_TRUE(constant_time_equal("", ""));
    EXPECT_FALSE(constant_time_equal("abc", "abcd"));
    EXPECT_FALSE(constant_time_equal(std::string_view("abc\0", 4), "abc"));
    for (int i = 0; i < 200; ++i) {
        std::string a(static_cast<size_t>(random.uniform_int(0, 6)), 'x');
        std::string b(static_cast<size_t>(random.uniform_int(0, 6)), 'x');
        for (auto& c : a) c = static_cast<char>(random.uniform_int(0, 2));
        for (auto& c : b) c = static_cast<char>(random.uniform_int(0, 2));
        EXPECT_EQ(constant_time_equal(a, b), a == b);
    }
}

TEST(ServerMetrics, HistogramIsCumulative) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    Histogram h;
    std::vector<double> values;
    for (int i = 0; i < 300; ++i) values.push_back(random.uniform(0.0f, 3.0f));
    values.push_back(500.0);  // above every bound: only in +Inf
    for (double v : values) h.observe(v);
    const std::string text = h.render("x");
    for (double bound : Histogram::k_bounds) {
        size_t expected = 0;
        for (double v : values) expected += v <= bound;
        EXPECT_NE(text.find(fmt::format("x_bucket{{le=\"{}\"}} {}\n", bound, expected)),
                  std::string::npos)
            << bound << "\n"
            << text;
    }
    EXPECT_NE(text.find(fmt::format("x_bucket{{le=\"+Inf\"}} {}\n", values.size())),
              std::string::npos);
    EXPECT_NE(text.find(fmt::format("x_count {}\n", values.size())), std::string::npos);

    Metrics m;
    m.count_request("/v1/completions", 200);
    m.count_request("/v1/completions", 200);
    m.count_request("/health", 503);
    m.add_tokens(5, 7);
    const std::string all = m.render(3, 2, 4);
    EXPECT_NE(all.find("edgeq_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n"),
              std::string::npos);
    EXPECT_NE(all.find("edgeq_prompt_tokens_total 5\n"), std::string::npos);
    EXPECT_NE(all.find("edgeq_generated_tokens_total 7\n"), std::string::npos);
    EXPECT_NE(all.find("edgeq_queue_depth 3\n"), std::string::npos);
    EXPECT_NE(all.find("edgeq_active_slots 2\n"), std::string::npos);
    EXPECT_EQ(m.requests_with_status(503), 1u);
}

}  // namespace
}  // namespace edgeq::server
