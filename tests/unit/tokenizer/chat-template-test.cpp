// Chat templates: byte-identical to Python's jinja2 (in transformers' environment) on every
// fixture of tests/fixtures/chat-templates (made by make_chat_template_fixtures.py: the
// templates of the checkpoint fixtures and the published Llama 3.1, Qwen2.5, Qwen3, Gemma 2/3,
// Phi-3, Mistral and SmolLM2 templates, over several conversations); templates that raise
// there raise here; unsupported or malformed templates and runaway ones give an Error.
#include "edgeq/tokenizer/chat-template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;

fs::path fixture_dir() {
    return fs::path(__FILE__).parent_path() / "../../fixtures/chat-templates";
}

std::vector<fs::path> fixture_files() {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(fixture_dir())) {
        if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

// Where two renderings first differ, with some context, for a readable failure.
std::string first_difference(const std::string& expected, const std::string& actual) {
    size_t i = 0;
    while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
    const size_t from = i > 40 ? i - 40 : 0;
    return "at byte " + std::to_string(i) + "\n  expected: ..." +
           nlohmann::json(expected.substr(from, 80)).dump() + "\n  actual:   ..." +
           nlohmann::json(actual.substr(from, 80)).dump();
}

TEST(ChatTemplate, RendersEveryFixtureAsJinja2Does) {
    const std::vector<fs::path> files = fixture_files();
    ASSERT_GE(files.size(), 17u) << "fixtures missing in " << fixture_dir();
    int n_cases = 0, n_raising = 0;
    for (const fs::path& file : files) {
        SCOPED_TRACE(file.filename().string());
        std::ifstream in(file);
        const auto fixture = nlohmann::ordered_json::parse(in);
        std::unique_ptr<ChatTemplate> tmpl;
        try {
            tmpl = std::make_unique<ChatTemplate>(fixture["template"].get<std::string>());
        } catch (const Error& e) {
            ADD_FAILURE() << "parse failed: " << e.what();
            continue;
        }
        for (size_t k = 0; k < fixture["cases"].size(); ++k) {
            const auto& c = fixture["cases"][k];
            SCOPED_TRACE("case " + std::to_string(k));
            ++n_cases;
            if (c.contains("error")) {
                ++n_raising;
                try {
                    tmpl->render(c["context"]);
                    ADD_FAILURE() << "rendered, but jinja2 raised: " << c["error"];
                } catch (const Error& e) {
                    EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()),
                              std::string::npos)
                        << e.what();
                }
                continue;
            }
            const std::string expected = c["expected"].get<std::string>();
            try {
                const std::string actual = tmpl->render(c["context"]);
                EXPECT_TRUE(actual == expected) << first_difference(expected, actual);
            } catch (const Error& e) {
                ADD_FAILURE() << "render failed: " << e.what();
            }
        }
    }
    EXPECT_GE(n_cases, 200);
    EXPECT_GE(n_raising, 8);
}

TEST(ChatTemplate, MessagesOverloadEqualsTheJsonContext) {
    const std::string source =
        "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}{{ eos_token }}";
    const std::vector<ChatMessage> messages = {{"system", "S"}, {"user", "U\n"}};
    EXPECT_EQ(render_chat_template(source, messages, true, "<s>", "</s>"),
              "<s><system>S<user>U\n<assistant></s>");
    EXPECT_EQ(render_chat_template(source, messages, false, "", ""), "<system>S<user>U\n");
}

void expect_error(const std::string& source, const std::string& fragment,
                  const ChatTemplateLimits& limits = {}) {
    SCOPED_TRACE(source);
    try {
        ChatTemplate tmpl(source, limits);
        tmpl.render({{"user", "hi"}}, true, "<s>", "</s>");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

TEST(ChatTemplate, UnsupportedAndMalformedTemplatesGiveErrorsWithTheLine) {
    expect_error("{% include 'x.jinja' %}", "unsupported tag 'include'");
    expect_error("a\n{% for x in y %}", "missing {% endfor %}");
    expect_error("{{ 1 + }}", "line 1");
    expect_error("\n\n{{ 'unterminated }}", "line 3");
    expect_error("{{ messages | frobnicate }}", "unsupported filter 'frobnicate'");
    expect_error("{{ x is frobnicated }}", "unsupported test 'frobnicated'");
    expect_error("{{ 'a'.frobnicate() }}", "unsupported method 'frobnicate'");
    expect_error("{{ foo.bar }}", "'foo' is undefined");
    expect_error("{{ raise_exception('custom failure') }}", "custom failure");
    expect_error("{{ 1 // 0 }}", "division");
    expect_error("{{ [1].append(2) }}", "cannot be modified");
    expect_error("{% set x = 1 %}{% set x.y = 2 %}", "non-namespace");
    expect_error("{{ 'a' < 1 }}", "not supported");
    expect_error("{{ 9223372036854775807 + 1 }}", "overflow");
    expect_error("{{ {% }}", "line 1");
    expect_error("{{ (((((((((((1))))))))))) }}", "nested deeper",
                 ChatTemplateLimits{1 << 20, 1000, 8});
}

TEST(ChatTemplate, LimitsStopRunawayTemplates) {
    ChatTemplateLimits limits;
    limits.max_output_bytes = 1000;
    limits.max_steps = 100000;
    expect_error("{% for i in range(900) %}{% for j in range(900) %}{% endfor %}{% endfor %}",
                 "steps", limits);
    expect_error("{{ range(100000000) | length }}", "range() of more than", limits);
    expect_error("{% for i in range(600) %}xx{% endfor %}", "longer than", limits);
    expect_error("{{ 'abc' * 100000000000 }}", "longer than", limits);
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper");
}

TEST(ChatTemplate, WhitespaceControlMatchesJinja2) {
    // trim_blocks eats one newline after a block tag; lstrip_blocks the indentation before
    // it; '-' strips all whitespace on its side; '+' keeps it.
    const auto r = [](const std::string& s) { return render_chat_template(s, {}, false, "", ""); };
    EXPECT_EQ(r("a\n  {% if true %}\nb\n  {% endif %}\nc\n"), "a\nb\nc");
    EXPECT_EQ(r("a  {%- if true -%}  \n b {%- endif %}"), "ab");
    EXPECT_EQ(r("a\n  {%+ if true %}b{% endif +%}\nc"), "a\n  b\nc");
    EXPECT_EQ(r("x {{ 1 }}\ny {# note #}\nz"), "x 1\ny z");
    EXPECT_EQ(r("line\r\n{% if 1 %}win{% endif %}\r\n"), "line\nwin");
}

}  // namespace
}  // namespace edgeq
