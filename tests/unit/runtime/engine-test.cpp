// The engine on small random models written with GgufWriter: one batch, token by token and
// odd chunks on several threads give the same logits; truncate and reset replay the cache; a
// sliding window hides what it should; bad files and calls are clear Errors. (Agreement with
// transformers is tests/integration/test_engine.py.)
#include "edgeq/runtime/engine.h"
#include "test-errors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/formats/gguf-writer.h"
#include "edgeq/model/model-spec.h"
#include "synth-model.h"
#include "test-random.h"

namespace edgeq {
namespace {

using testing::expect_error;

using testing::random_ids;
using testing::Synth;
using testing::TempModel;

// Logits of every position: the first `first` ids in one decode(), then one id per call.
std::vector<float> run(const LoadedModel& model, const std::vector<int32_t>& ids, int first,
                       SessionOptions options) {
    options.all_logits = true;
    Session session(model, options);
    const size_t n_vocab = static_cast<size_t>(model.n_vocab());
    std::vector<float> out;
    session.decode({ids.data(), static_cast<size_t>(first)});
    for (int i = 0; i < first; ++i)
        out.insert(out.end(), session.logits_at(i), session.logits_at(i) + n_vocab);
    for (size_t i = static_cast<size_t>(first); i < ids.size(); ++i) {
        const float* last = session.decode({&ids[i], 1});
        out.insert(out.end(), last, last + n_vocab);
    }
    EXPECT_EQ(session.n_past(), static_cast<int32_t>(ids.size()));
    return out;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel) {
    ASSERT_EQ(got.size(), want.size());
    double max = 0;
    for (float v : want) max = std::max(max, double{std::abs(v)});
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], rel * max) << "at " << i;
}

TEST(Engine, BatchStepsAndChunksAgree) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    Synth qwen3;
    Synth gemma2;
    gemma2.arch = "gemma2";
    gemma2.qk_norm = false;
    gemma2.post_norms = true;
    gemma2.tied = true;
    gemma2.sliding_window = 5;
    for (const Synth& m : {qwen3, gemma2}) {
        SCOPED_TRACE(m.arch);
        const TempModel file(m, random, m.arch);
        const auto model = LoadedModel::load(file.path);
        EXPECT_EQ(model->n_vocab(), m.n_vocab);
        EXPECT_EQ(model->n_ctx_train(), 256);
        const std::vector<int32_t> ids = random_ids(random, 23, m.n_vocab);
        SessionOptions f32{.n_ctx = 64, .n_threads = 1, .n_batch = 64, .kv_f32 = true};
        const std::vector<float> whole = run(*model, ids, 23, f32);
        expect_close(run(*model, ids, 1, f32), whole, 1e-5);
        SessionOptions chunked = f32;
        chunked.n_batch = 4;
        chunked.n_threads = 3;
        expect_close(run(*model, ids, 11, chunked), whole, 1e-5);
        // The F16 cache rounds keys and values to 11 bits.
        SessionOptions f16{.n_ctx = 64, .n_threads = 2, .n_batch = 6};
        expect_close(run(*model, ids, 9, f16), whole, 5e-3);
    }
}

TEST(Engine, AllLogitsCanBeTurnedOnAfterAPrefix) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const Synth m;
    const TempModel file(m, random, "all-logits");
    const auto model = LoadedModel::load(file.path);
    const std::vector<int32_t> ids = random_ids(random, 19, m.n_vocab);
    SessionOptions f32{.n_ctx = 64, .n_threads = 2, .n_batch = 5, .kv_f32 = true};
    const std::vector<float> whole = run(*model, ids, 19, f32);
    // A prefix of 8 without logits, then 11 positions with them, as edgeq eval decodes.
    Session session(*model, f32);
    session.decode({ids.data(), 8});
    EXPECT_THROW(session.logits_at(0), Error);  // only the last position is kept
    session.set_all_logits(true);
    EXPECT_THROW(session.logits_at(7), Error);  // the last decode is forgotten
    session.decode({ids.data() + 8, 11});
    const size_t n_vocab = static_cast<size_t>(m.n_vocab);
    std::vector<float> tail;
    for (int i = 0; i < 11; ++i)
        tail.insert(tail.end(), session.logits_at(i), session.logits_at(i) + n_vocab);
    expect_close(tail,
                 std::vector<float>(whole.begin() + 8 * static_cast<long>(n_vocab), whole.end()),
                 1e-5);
    session.set_all_logits(false);
    const float* last = session.decode({ids.data(), 1});
    EXPECT_EQ(last, session.logits_at(0));
    EXPECT_THROW(session.logits_at(1), Error);
}

TEST(Engine, TruncateAndResetReplayTheCache) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const Synth m;
    const TempModel file(m, random, "truncate");
    const auto model = LoadedModel::load(file.path);
    const std::vector<int32_t> ids = random_ids(random, 15, m.n_vocab);
    Session session(*model, {.n_ctx = 32, .n_threads = 2, .all_logits = true});
    EXPECT_EQ(session.n_ctx(), 32);
    session.decode(ids);
    const size_t n_vocab = static_cast<size_t>(m.n_vocab);
    std::vector<float> first(session.logits_at(0), session.logits_at(0) + 15 * n_vocab);
    const std::vector<float> hidden = session.mean_hidden();
    ASSERT_EQ(hidden.size(), static_cast<size_t>(m.n_embd));

    session.truncate(9);
    EXPECT_EQ(session.n_past(), 9);
    session.decode({ids.data() + 9, 6});
    const std::vector<float> tail(session.logits_at(0), session.logits_at(0) + 6 * n_vocab);
    expect_close(tail,
                 std::vector<float>(first.begin() + 9 * static_cast<long>(n_vocab), first.end()),
                 1e-6);

    session.reset();
    EXPECT_EQ(session.n_past(), 0);
    session.decode(ids);
    expect_close(std::vector<float>(session.logits_at(0), session.logits_at(0) + 15 * n_vocab),
                 first, 1e-6);
    expect_close(session.mean_hidden(), hidden, 1e-6);
    // Without all_logits, only the last position is kept.
    Session last_only(*model, {.n_ctx = 32, .n_threads = 1});
    const float* last = last_only.decode(ids);
    expect_close(std::vector<float>(last, last + n_vocab),
                 std::vector<float>(first.end() - static_cast<long>(n_vocab), first.end()), 1e-6);
    EXPECT_THROW(last_only.logits_at(0), Error);
}

TEST(Engine, SlidingWindowHidesOldTokens) {
    // Two layers that both slide over 4 positions: position p sees back to p - 6, no further.
    testing::Random random;
    SCOPED_TRACE(random.trace());
    Synth m;
    m.arch = "gemma2";
    m.qk_norm = false;
    m.post_norms = true;
    m.sliding_window = 4;
    m.all_local = true;
    const TempModel file(m, random, "window");
    const auto model = LoadedModel::load(file.path);
    EXPECT_TRUE(model->spec().is_local(0) && model->spec().is_local(1));
    std::vector<int32_t> ids = random_ids(random, 16, m.n_vocab);
    const SessionOptions options{.n_ctx = 16, .n_threads = 1, .kv_f32 = true};
    const std::vector<float> a = run(*model, ids, 16, options);
    ids[2] = (ids[2] + 1) % m.n_vocab;
    const std::vector<float> b = run(*model, ids, 16, options);
    const size_t n_vocab = static_cast<size_t>(m.n_vocab);
    for (size_t p = 0; p < 16; ++p) {
        const bool same = std::equal(a.begin() + static_cast<long>(p * n_vocab),
                                     a.begin() + static_cast<long>((p + 1) * n_vocab),
                                     b.begin() + static_cast<long>(p * n_vocab));
        EXPECT_EQ(same, p < 2 || p > 8) << "position " << p;
    }
}

TEST(ModelSpec, FamiliesFromMetadata) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    {
        Synth m;
        m.arch = "gemma3";
        m.n_layer = 7;
        m.post_norms = true;
        m.sliding_window = 9;
        m.tied = true;
        m.extra = {{"gemma3.rope.freq_base", GgufValue::make_float32(1e6f)},
                   {"gemma3.rope.scaling.type", GgufValue::make_string("linear")},
                   {"gemma3.rope.scaling.factor", GgufValue::make_float32(8.0f)}};
        const TempModel file(m, random, "spec-gemma3");
        const ModelSpec s = LoadedModel::load(file.path)->spec();
        EXPECT_EQ(s.activation, Activation::gelu_tanh);
        EXPECT_EQ(s.rope_style, RopeStyle::neox);
        EXPECT_TRUE(s.qk_norm && s.post_norms && s.tied_output);
        EXPECT_FALSE(s.qkv_bias || s.fused_qkv || s.fused_gate_up);
        EXPECT_FLOAT_EQ(s.embedding_scale, std::sqrt(32.0f));
        EXPECT_FLOAT_EQ(s.attn_scale, 0.25f);  // 1 / sqrt(head_dim 16)
        EXPECT_EQ(s.attn_softcap, 0.0f);
        // Global layers: base 1e6 scaled by 1/8; local layers: base 10000, unscaled.
        EXPECT_FLOAT_EQ(s.rope_global.freq_base, 1e6f);
        EXPECT_FLOAT_EQ(s.rope_global.freq_scale, 0.125f);
        EXPECT_FLOAT_EQ(s.rope_local.freq_base, 10000.0f);
        EXPECT_FLOAT_EQ(s.rope_local.freq_scale, 1.0f);
        EXPECT_EQ(s.sliding_window, 9);
        for (int il = 0; il < 7; ++il) EXPECT_EQ(s.is_local(il), il != 5) << il;
    }
    {
        Synth m;
        m.arch = "gemma2";
        m.qk_norm = false;
        m.post_norms = true;
        m.sliding_window = 4;
        m.n_layer = 3;
        m.extra = {{"gemma2.attn_logit_softcapping", GgufValue::make_float32(50.0f)},
                   {"gemma2.final_logit_softcapping", GgufValue::make_float32(30.0f)}};
        const TempModel file(m, random, "spec-gemma2");
        const ModelSpec s = LoadedModel::load(file.path)->spec();
        EXPECT_FLOAT_EQ(s.attn_softcap, 50.0f);
        EXPECT_FLOAT_EQ(s.final_softcap, 30.0f);
        EXPECT_TRUE(s.is_local(0) && !s.is_local(1) && s.is_local(2));
        EXPECT_EQ(s.rope_local.freq_base, s.rope_global.freq_base);
    }
    {
        Synth m;
        m.arch = "llama";
        m.qk_norm = false;
        m.extra = {{"llama.rope.scaling.type", GgufValue::make_string("yarn")}};
        const TempModel file(m, random, "spec-yarn");
        try {
            LoadedModel::load(file.path);
            ADD_FAILURE() << "yarn accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("rope scaling 'yarn'"), std::string::npos);
        }
    }
}

TEST(Engine, LongRopeFactorsFollowTheContextLength) {
    // Phi-3 128k: the long factors apply when n_ctx exceeds the original context. Model A has
    // short factors S and long L; model B (same weights) has L for both. A and B agree exactly
    // when both use L (long context) and differ when A uses S.
    testing::Random random;
    SCOPED_TRACE(random.trace());
    Synth a;
    a.arch = "phi3";
    a.qk_norm = false;
    a.fused = true;
    a.n_head_kv = a.n_head;
    a.n_ctx_train = 64;
    a.extra = {{"phi3.rope.scaling.original_context_length", GgufValue::make_uint32(16)}};
    for (int i = 0; i < a.head_dim / 2; ++i) {
        a.rope_short.push_back(random.uniform(1, 2));
        a.rope_long.push_back(random.uniform(2, 40));
    }
    Synth b = a;
    b.rope_short = a.rope_long;
    const uint64_t seed = random.engine()();
    testing::Random ra, rb;  // the same weights in both files
    ra.engine().seed(seed);
    rb.engine().seed(seed);
    const TempModel file_a(a, ra, "longrope-a"), file_b(b, rb, "longrope-b");
    const auto model_a = LoadedModel::load(file_a.path), model_b = LoadedModel::load(file_b.path);
    const ModelSpec& s = model_a->spec();
    EXPECT_TRUE(s.fused_qkv && s.fused_gate_up);
    EXPECT_EQ(s.rope_global.factors, a.rope_short);
    EXPECT_EQ(s.rope_long_factors, a.rope_long);
    EXPECT_NEAR(s.rope_global.attn_factor, std::sqrt(1 + std::log(4.0) / std::log(16.0)), 1e-6);
    const std::vector<int32_t> ids = random_ids(random, 12, a.n_vocab);
    const SessionOptions short_ctx{.n_ctx = 16, .n_threads = 1, .kv_f32 = true};
    const SessionOptions long_ctx{.n_ctx = 64, .n_threads = 1, .kv_f32 = true};
    EXPECT_EQ(run(*model_a, ids, 12, long_ctx), run(*model_b, ids, 12, long_ctx));
    EXPECT_NE(run(*model_a, ids, 12, short_ctx), run(*model_b, ids, 12, short_ctx));
}

TEST(Engine, BadModelsAndCallsAreErrors) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    {
        Synth m;
        m.arch = "bert";
        const TempModel file(m, random, "bert");
        expect_error([&] { LoadedModel::load(file.path); }, "architecture 'bert' is not supported");
    }
    {
        Synth m;
        m.skip = {"blk.1.ffn_down.weight"};
        const TempModel file(m, random, "missing");
        expect_error([&] { LoadedModel::load(file.path); }, "blk.1.ffn_down.weight is missing");
    }
    {
        Synth m;
        m.skip = {"blk.1.attn_q_norm.weight"};  // block 0 says the family has QK-norms
        const TempModel file(m, random, "missing-norm");
        expect_error([&] { LoadedModel::load(file.path); }, "blk.1.attn_q_norm.weight is missing");
    }
    const Synth m;
    const TempModel file(m, random, "calls");
    const auto model = LoadedModel::load(file.path);
    Session session(*model, {.n_ctx = 8, .n_threads = 1});
    const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
    session.decode(ids);
    expect_error([&] { session.decode(ids); }, "overflow the context of 8");
    EXPECT_EQ(session.n_past(), 6);
    const int32_t bad = m.n_vocab;
    expect_error([&] { session.decode({&bad, 1}); }, "outside the vocabulary");
    expect_error([&] { session.decode({}); }, "no tokens");
    expect_error([&] { session.truncate(7); }, "outside the cache");
    expect_error([&] { session.logits_at(6); }, "outside the last decode");
    expect_error([&] { Session q8(*model, {.kv_q8_0 = true}); }, "multiples of 32");
}

}  // namespace
}  // namespace edgeq
