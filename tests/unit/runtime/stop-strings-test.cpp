// StopStrings against a direct computation: the text shown is the generated text cut at the
// first occurrence of any stop string, whatever the split into pieces, and nothing that is
// shown can later turn out to belong to a stop string.
#include "edgeq/runtime/stop-strings.h"

#include <gtest/gtest.h>

#include <random>

#include "test-random.h"

namespace edgeq {
namespace {

// The expected output: the text read a character at a time, cut at the start of the first
// stop string to end (the longest of those ending at the same place); all of it if none does.
std::string cut(const std::string& text, const std::vector<std::string>& stops) {
    for (size_t end = 1; end <= text.size(); ++end) {
        size_t longest = 0;
        for (const std::string& s : stops) {
            if (!s.empty() && s.size() <= end && text.compare(end - s.size(), s.size(), s) == 0) {
                longest = std::max(longest, s.size());
            }
        }
        if (longest > 0) return text.substr(0, end - longest);
    }
    return text;
}

TEST(StopStrings, KnownCases) {
    StopStrings a({"User:"});
    EXPECT_EQ(a.push("Hello Us"), "Hello ");
    EXPECT_EQ(a.push("e"), "");
    EXPECT_EQ(a.push("d to it"), "Used to it");
    EXPECT_FALSE(a.stopped());
    EXPECT_EQ(a.push(" User: more"), " ");
    EXPECT_TRUE(a.stopped());
    EXPECT_EQ(a.push("ignored"), "");
    EXPECT_EQ(a.flush(), "");

    StopStrings b({"\n\n", "END"});
    EXPECT_EQ(b.push("line\n"), "line");
    EXPECT_EQ(b.flush(), "\n");  // the end of generation releases what was held

    StopStrings overlap({"abc", "b"});  // "b" is complete first
    EXPECT_EQ(overlap.push("ab"), "a");
    EXPECT_TRUE(overlap.stopped());

    StopStrings none({});
    EXPECT_EQ(none.push("abc"), "abc");
    StopStrings empty_stop({""});
    EXPECT_EQ(empty_stop.push("abc"), "abc");
    EXPECT_FALSE(empty_stop.stopped());
}

TEST(StopStrings, RandomSplitsMatchTheDirectCut) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    std::mt19937_64& rng = random.engine();
    const std::string alphabet = "ab\nc";
    auto text_of = [&](size_t n) {
        std::string s;
        for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
        return s;
    };
    for (int trial = 0; trial < 3000; ++trial) {
        std::vector<std::string> stops;
        const int n_stops = static_cast<int>(rng() % 4);
        for (int i = 0; i < n_stops; ++i) stops.push_back(text_of(1 + rng() % 4));
        const std::string text = text_of(rng() % 40);
        StopStrings s(stops);
        std::string shown;
        for (size_t pos = 0; pos < text.size() && !s.stopped();) {
            const size_t n = std::min(text.size() - pos, static_cast<size_t>(1 + rng() % 5));
            shown += s.push(std::string_view(text).substr(pos, n));
            // What is shown is always a prefix of the final answer.
            ASSERT_EQ(cut(text, stops).compare(0, shown.size(), shown), 0)
                << "text '" << text << "'";
            pos += n;
        }
        if (!s.stopped()) shown += s.flush();
        ASSERT_EQ(shown, cut(text, stops)) << "text '" << text << "'";
        ASSERT_EQ(s.stopped(), cut(text, stops).size() != text.size()) << "text '" << text << "'";
    }
}

}  // namespace
}  // namespace edgeq
