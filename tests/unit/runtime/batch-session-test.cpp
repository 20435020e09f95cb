// BatchSession on small random models: requests that join, leave, truncate and reuse sequences
// in randomly mixed steps (prompt chunks of several sizes beside single decode tokens, items of
// one sequence interleaved with others) give, for every item that kept logits, the logits that
// a plain Session gives for that request's tokens decoded alone. Bad calls are Errors that
// leave every cache as it was.
#include "edgeq/runtime/batch-session.h"
#include "test-errors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/runtime/engine.h"
#include "synth-model.h"
#include "test-random.h"

namespace edgeq {
namespace {

using testing::expect_error;

using testing::random_ids;
using testing::Synth;
using testing::TempModel;

// The logits of one position of a request's token history, as the batch gave them.
struct Record {
    size_t history;
    int32_t pos;
    std::vector<float> logits;
};

// A request in flight on a sequence: its tokens so far (history) and those still to feed.
struct Request {
    size_t history = 0;            // index into histories
    std::vector<int32_t> to_feed;  // the rest of the request
    int32_t prompt_left = 0;       // of to_feed, fed in chunks; then one token per step
    bool truncated = false;
};

struct Scenario {
    int32_t n_seq = 4;
    int n_requests = 9;
    int max_len = 40;
    int long_len = 0;  // if > 0, the first request is this long (attention split in parts)
};

// Runs the scenario on a BatchSession and checks every record against a Session.
void check_against_sessions(const LoadedModel& model, const SessionOptions& options,
                            const Scenario& sc, testing::Random& random, double tolerance) {
    const int n_vocab = model.n_vocab();
    BatchSession batch(model, options, sc.n_seq);
    ASSERT_EQ(batch.n_seq(), sc.n_seq);
    std::vector<std::vector<int32_t>> histories;
    std::vector<Record> records;
    std::vector<Request> slots(static_cast<size_t>(sc.n_seq));
    std::vector<bool> busy(static_cast<size_t>(sc.n_seq), false);
    int started = 0;
    int steps = 0;
    std::vector<BatchItem> items;
    std::vector<std::vector<int32_t>> per_seq(static_cast<size_t>(sc.n_seq));
    while (true) {
        // Free sequences take new requests now and then (a reused one is reset first).
        for (int32_t s = 0; s < sc.n_seq; ++s) {
            if (busy[size_t(s)] || started == sc.n_requests || random.uniform_int(0, 2) == 0)
                continue;
            const int len =
                started == 0 && sc.long_len > 0 ? sc.long_len : random.uniform_int(1, sc.max_len);
            Request r;
            r.history = histories.size();
            histories.emplace_back();
            r.to_feed = random_ids(random, len, n_vocab);
            r.prompt_left = random.uniform_int(1, len);
            batch.reset(s);
            EXPECT_EQ(batch.n_past(s), 0);
            slots[size_t(s)] = std::move(r);
            busy[size_t(s)] = true;
            ++started;
        }
        const bool any = std::find(busy.begin(), busy.end(), true) != busy.end();
        if (!any && started == sc.n_requests) break;
        if (!any) continue;

        // This step's tokens per sequence: a prompt chunk, or one token.
        for (int32_t s = 0; s < sc.n_seq; ++s) {
            auto& feed = per_seq[size_t(s)];
            feed.clear();
            if (!busy[size_t(s)]) continue;
            Request& r = slots[size_t(s)];
            const int n = r.prompt_left > 0 ? random.uniform_int(1, r.prompt_left) : 1;
            r.prompt_left -= r.prompt_left > 0 ? n : 0;
            feed.assign(r.to_feed.begin(), r.to_feed.begin() + n);
            r.to_feed.erase(r.to_feed.begin(), r.to_feed.begin() + n);
        }
        // Items: the sequences' tokens merged in a random order that keeps each one's order.
        items.clear();
        std::vector<size_t> next(static_cast<size_t>(sc.n_seq), 0);
        std::vector<int32_t> first_pos(static_cast<size_t>(sc.n_seq));
        for (int32_t s = 0; s < sc.n_seq; ++s) first_pos[size_t(s)] = batch.n_past(s);
        size_t total = 0;
        for (const auto& f : per_seq) total += f.size();
        const bool interleave = random.uniform_int(0, 1) == 1;
        int32_t s = random.uniform_int(0, sc.n_seq - 1);
        while (items.size() < total) {
            if (interleave || next[size_t(s)] == per_seq[size_t(s)].size())
                s = random.uniform_int(0, sc.n_seq - 1);
            if (next[size_t(s)] == per_seq[size_t(s)].size()) continue;
            items.push_back({s, per_seq[size_t(s)][next[size_t(s)]++], false});
        }
        // Logits: each sequence's last item (as a server asks), and a few more while allowed.
        int n_want = 0;
        for (int32_t q = 0; q < sc.n_seq; ++q) {
            for (size_t i = items.size(); i-- > 0;) {
                if (items[i].seq != q) continue;
                items[i].want_logits = true;
                ++n_want;
                break;
            }
        }
        const int max_want = options.all_logits ? std::max(options.n_batch, sc.n_seq) : sc.n_seq;
        for (auto& item : items) {
            if (n_want < max_want && !item.want_logits && random.uniform_int(0, 3) == 0) {
                item.want_logits = true;
                ++n_want;
            }
        }
        batch.decode(items);
        ++steps;

        std::vector<int32_t> seen(static_cast<size_t>(sc.n_seq), 0);
        for (size_t i = 0; i < items.size(); ++i) {
            const BatchItem& item = items[i];
            const size_t hist = slots[size_t(item.seq)].history;
            const int32_t pos = first_pos[size_t(item.seq)] + seen[size_t(item.seq)]++;
            histories[hist].push_back(item.token);
            if (!item.want_logits) {
                EXPECT_THROW(batch.logits(static_cast<int32_t>(i)), Error);
                continue;
            }
            const float* l = batch.logits(static_cast<int32_t>(i));
            records.push_back({hist, pos, std::vector<float>(l, l + n_vocab)});
        }
        for (int32_t q = 0; q < sc.n_seq; ++q) {
            if (!busy[size_t(q)]) continue;
            Request& r = slots[size_t(q)];
            EXPECT_EQ(batch.n_past(q), static_cast<int32_t>(histories[r.history].size()));
            if (!r.to_feed.empty()) continue;
            // Finished: leave, or (once) go back to an earlier position and go on differently.
            if (r.truncated || random.uniform_int(0, 2) != 0) {
                busy[size_t(q)] = false;
                continue;
            }
            const int32_t keep = random.uniform_int(1, batch.n_past(q));
            batch.truncate(q, keep);
            EXPECT_EQ(batch.n_past(q), keep);
            const auto& old = histories[r.history];
            std::vector<int32_t> kept(old.begin(), old.begin() + keep);
            r.history = histories.size();
            histories.push_back(std::move(kept));
            r.to_feed = random_ids(random, random.uniform_int(1, 8), n_vocab);
            r.prompt_left = static_cast<int32_t>(r.to_feed.size());
            r.truncated = true;
        }
    }
    EXPECT_GT(steps, sc.n_requests);

    // Each history decoded alone by a Session.
    SessionOptions alone = options;
    alone.all_logits = true;
    alone.n_batch = 512;
    std::vector<float> want;
    size_t checked = 0;
    for (size_t hist = 0; hist < histories.size(); ++hist) {
        Session session(model, alone);
        session.decode(histories[hist]);
        double max = 0;
        for (int32_t p = 0; p < session.n_past(); ++p) {
            for (int j = 0; j < n_vocab; ++j)
                max = std::max(max, double{std::abs(session.logits_at(p)[j])});
        }
        for (const Record& r : records) {
            if (r.history != hist) continue;
            const float* ref = session.logits_at(r.pos);
            for (int j = 0; j < n_vocab; ++j)
                ASSERT_NEAR(r.logits[size_t(j)], ref[j], tolerance * max)
                    << "history " << hist << " position " << r.pos << " logit " << j;
            ++checked;
        }
    }
    EXPECT_EQ(checked, records.size());
    EXPECT_GT(records.size(), static_cast<size_t>(sc.n_requests));
}

Synth gemma2_like() {
    Synth m;
    m.arch = "gemma2";
    m.qk_norm = false;
    m.post_norms = true;
    m.tied = true;
    m.sliding_window = 5;
    m.extra = {{"gemma2.attn_logit_softcapping", GgufValue::make_float32(20.0f)},
               {"gemma2.final_logit_softcapping", GgufValue::make_float32(15.0f)}};
    return m;
}

TEST(BatchSession, MixedStepsMatchSessionsAlone) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    Synth qwen3;
    qwen3.n_vocab = 67;
    Synth phi3;
    phi3.arch = "phi3";
    phi3.qk_norm = false;
    phi3.fused = true;
    phi3.n_head_kv = phi3.n_head;
    for (const Synth& m : {qwen3, gemma2_like(), phi3}) {
        SCOPED_TRACE(m.arch);
        const TempModel file(m, random, "batch-" + m.arch);
        const auto model = LoadedModel::load(file.path);
        const int32_t n_seq = random.uniform_int(2, 5);
        // n_batch below a step's items too: a decode() then runs in several passes.
        const int32_t n_batch = random.uniform_int(0, 1) ? 64 : random.uniform_int(3, 9);
        const int32_t n_threads = random.uniform_int(1, 3);
        SCOPED_TRACE("n_seq " + std::to_string(n_seq) + " n_batch " + std::to_string(n_batch) +
                     " threads " + std::to_string(n_threads));
        const SessionOptions f32{
            .n_ctx = 64, .n_threads = n_threads, .n_batch = n_batch, .kv_f32 = true};
        check_against_sessions(*model, f32, {.n_seq = n_seq}, random, 1e-5);
        SessionOptions all = f32;
        all.all_logits = true;
        check_against_sessions(*model, all, {.n_seq = n_seq, .n_requests = 5}, random, 1e-5);
        // F16 caches: a key computed in a different matmul may round to a neighbouring half.
        const SessionOptions f16{.n_ctx = 64, .n_threads = n_threads, .n_batch = n_batch};
        check_against_sessions(*model, f16, {.n_seq = n_seq, .n_requests = 5}, random, 5e-3);
    }
}

TEST(BatchSession, LongSequenceSplitsItsAttention) {
    // Past 256 positions a decode token's attention runs in parts that threads share.
    testing::Random random;
    SCOPED_TRACE(random.trace());
    Synth m = gemma2_like();
    m.sliding_window = 300;
    m.n_ctx_train = 640;
    const TempModel file(m, random, "batch-long");
    const auto model = LoadedModel::load(file.path);
    const SessionOptions options{.n_ctx = 600, .n_threads = 3, .n_batch = 32, .kv_f32 = true};
    check_against_sessions(*model, options,
                           {.n_seq = 3, .n_requests = 4, .max_len = 30, .long_len = 580}, random,
                           1e-5);
}

TEST(BatchSession, BadCallsAreErrorsAndChangeNothing) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const Synth m;
    const TempModel file(m, random, "batch-errors");
    const auto model = LoadedModel::load(file.path);
    const SessionOptions options{.n_ctx = 8, .n_threads = 2, .kv_f32 = true};
    expect_error([&] { BatchSession b(*model, options, 0); }, "0 sequences");
    BatchSession batch(*model, options, 3);
    EXPECT_EQ(batch.n_ctx(), 8);
    const std::vector<int32_t> a = random_ids(random, 8, m.n_vocab);
    const std::vector<int32_t> b = random_ids(random, 3, m.n_vocab);
    std::vector<BatchItem> items;
    for (int i = 0; i < 6; ++i) items.push_back({0, a[size_t(i)], false});
    for (int i = 0; i < 2; ++i) items.push_back({1, b[size_t(i)], false});
    batch.decode(items);
    EXPECT_EQ(batch.n_past(0), 6);
    EXPECT_EQ(batch.n_past(1), 2);
    EXPECT_EQ(batch.n_past(2), 0);

    const auto unchanged = [&] {
        EXPECT_EQ(batch.n_past(0), 6);
        EXPECT_EQ(batch.n_past(1), 2);
        EXPECT_EQ(batch.n_past(2), 0);
    };
    // Sequence 0 would overflow; sequence 1's item, valid, must not run either.
    const std::vector<BatchItem> overflow = {
        {1, b[2], true}, {0, a[6], true}, {0, a[7], true}, {0, 5, true}};
    expect_error([&] { batch.decode(overflow); }, "overflow sequence 0's context of 8");
    unchanged();
    expect_error(
        [&] {
            batch.decode(std::vector<BatchItem>{{1, b[2]}, {3, 1}});
        },
        "item 1 has sequence 3, outside 0..2");
    expect_error([&] { batch.decode(std::vector<BatchItem>{{-1, 1}}); }, "sequence -1");
    expect_error(
        [&] {
            batch.decode(std::vector<BatchItem>{{1, b[2]}, {2, m.n_vocab}});
        },
        "outside the vocabulary");
    expect_error([&] { batch.decode(std::vector<BatchItem>{{2, -1}}); }, "token id -1");
    expect_error([&] { batch.decode({}); }, "no items");
    const std::vector<BatchItem> greedy(4, {2, 1, true});  // 4 logits, 3 kept
    expect_error([&] { batch.decode(greedy); }, "4 items want logits");
    unchanged();
    expect_error([&] { batch.n_past(3); }, "sequence 3 is outside 0..2");
    expect_error([&] { batch.reset(-1); }, "sequence -1");
    expect_error([&] { batch.truncate(1, 3); }, "outside sequence 1's 0..2 tokens");
    expect_error([&] { batch.truncate(1, -1); }, "outside sequence 1's");
    expect_error([&] { batch.truncate(5, 0); }, "sequence 5");
    unchanged();

    // After all that, the sequences go on as if nothing had been tried.
    batch.decode(std::vector<BatchItem>{{1, b[2], true}, {0, a[6], true}, {0, a[7], true}});
    expect_error([&] { batch.logits(3); }, "item 3 of the last decode did not want logits");
    expect_error([&] { batch.logits(-1); }, "did not want logits");
    Session s0(*model, options), s1(*model, options);
    const size_t n_vocab = size_t(m.n_vocab);
    const float* want1 = s1.decode(b);
    for (size_t j = 0; j < n_vocab; ++j) EXPECT_NEAR(batch.logits(0)[j], want1[j], 1e-4);
    const float* want0 = s0.decode(a);
    for (size_t j = 0; j < n_vocab; ++j) EXPECT_NEAR(batch.logits(2)[j], want0[j], 1e-4);
    // A full sequence refuses more; the others are not full.
    expect_error([&] { batch.decode(std::vector<BatchItem>{{0, 1}}); }, "overflow sequence 0");
    batch.reset(0);
    EXPECT_EQ(batch.n_past(0), 0);
    EXPECT_EQ(batch.n_past(1), 3);
    batch.decode(std::vector<BatchItem>{{0, a[0], true}, {2, a[0], true}});
    for (size_t j = 0; j < n_vocab; ++j) EXPECT_NEAR(batch.logits(0)[j], batch.logits(1)[j], 1e-5);
}

}  // namespace
}  // namespace edgeq
