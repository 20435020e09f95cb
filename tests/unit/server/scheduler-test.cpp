// The scheduler against the engine alone: every job of a crowd submitted at once (more jobs
// than slots, prompts longer than a step's batch) must produce what one Session and one
// Sampler produce for it on their own, batched or not; stop strings cut that text; a full
// context ends a job with "length"; an embedding is the normalised mean hidden state.
#include "edgeq/server/scheduler.h"

#include <gtest/gtest.h>

#include <cmath>

#include "edgeq/core/error.h"
#include "edgeq/runtime/engine.h"
#include "edgeq/tokenizer/tokenizer.h"
#include "runtime/synth-model.h"
#include "test-random.h"

namespace edgeq::server {
namespace {

using testing::Random;
using testing::Synth;
using testing::TempModel;

// A random qwen3-shaped model with a SentencePiece vocabulary of <unk> <s> </s> and 58 single
// characters, so that a text is its tokens.
Synth synth_with_vocabulary() {
    Synth m;
    m.n_vocab = 61;
    std::vector<std::string> texts = {"<unk>", "<s>", "</s>"};
    std::vector<int32_t> types = {2, 3, 3};
    std::vector<float> scores = {0, 0, 0};
    const std::string chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    for (char c : chars) {
        texts.emplace_back(1, c);
        types.push_back(1);
        scores.push_back(-static_cast<float>(scores.size()));
    }
    m.extra = {
        {"tokenizer.ggml.model", GgufValue::make_string("llama")},
        {"tokenizer.ggml.tokens", GgufValue::make_string_array(texts)},
        {"tokenizer.ggml.token_type",
         GgufValue::make_numeric_array<int32_t>(GgufType::int32, std::span<const int32_t>(types))},
        {"tokenizer.ggml.scores",
         GgufValue::make_numeric_array<float>(GgufType::float32, std::span<const float>(scores))},
        {"tokenizer.ggml.bos_token_id", GgufValue::make_uint32(1)},
        {"tokenizer.ggml.eos_token_id", GgufValue::make_uint32(2)},
        {"tokenizer.ggml.unknown_token_id", GgufValue::make_uint32(0)},
    };
    return m;
}

struct Result {
    std::string text;
    FinishReason finish = FinishReason::none;
    int32_t n_generated = 0;
};

// What a job produces, from one Session and Sampler of its own: the prompt's tokens feed the
// penalties, generation ends at end of generation, after max_tokens, or when the next token
// would not fit the context.
Result reference(const LoadedModel& model, const SessionOptions& options,
                 const GenerationJob& job) {
    Session session(model, options);
    Sampler sampler(job.sampling, model.n_vocab());
    for (int32_t id : job.prompt) sampler.accept(id);
    StreamDecoder text(model.tokenizer());
    Result r;
    const float* logits = session.decode(job.prompt);
    while (true) {
        const int32_t id = sampler.sample(logits);
        if (model.tokenizer().is_end_of_generation(id)) {
            r.finish = FinishReason::stop;
            break;
        }
        sampler.accept(id);
        ++r.n_generated;
        r.text += text.push(id);
        if (r.n_generated >= job.max_tokens || session.n_past() + 1 > session.n_ctx()) {
            r.finish = FinishReason::length;
            break;
        }
        logits = session.decode(std::span<const int32_t>(&id, 1));
    }
    r.text += text.flush();
    return r;
}

Result collect(GenerationJob& job) {
    Result r;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
        GenerationJob::Output out = job.take(std::chrono::milliseconds(20));
        r.text += out.text;
        if (out.done) {
            r.finish = out.finish;
            r.n_generated = out.n_generated;
            return r;
        }
    }
    ADD_FAILURE() << "the job did not finish";
    return r;
}

std::shared_ptr<GenerationJob> random_job(Random& random, int n_vocab, int max_prompt) {
    auto job = std::make_shared<GenerationJob>();
    job->prompt = testing::random_ids(random, random.uniform_int(1, max_prompt), n_vocab);
    job->max_tokens = random.uniform_int(1, 16);
    job->sampling.temperature = random.uniform_int(0, 1) ? 0.0f : 0.9f;
    job->sampling.seed = static_cast<uint64_t>(random.uniform_int(0, 1 << 30));
    job->sampling.presence_penalty = random.uniform(0.0f, 0.5f);
    return job;
}

class SchedulerModes : public ::testing::TestWithParam<bool> {};

TEST_P(SchedulerModes, ConcurrentJobsEqualTheEngineAlone) {
    Random random;
    SCOPED_TRACE(random.trace());
    const TempModel file(synth_with_vocabulary(), random, "scheduler");
    const auto model = LoadedModel::load(file.path);
    Metrics metrics;
    SchedulerOptions options;
    options.n_slots = 3;
    options.max_queue = 16;
    options.batched = GetParam();
    options.session = {.n_ctx = 64, .n_threads = 2, .n_batch = 8};  // prompts span steps
    Scheduler scheduler(*model, options, metrics);

    std::vector<std::shared_ptr<GenerationJob>> jobs;
    for (int i = 0; i < 8; ++i) jobs.push_back(random_job(random, model->n_vocab(), 30));
    for (auto& job : jobs) ASSERT_TRUE(scheduler.submit(job));
    for (size_t i = 0; i < jobs.size(); ++i) {
        SCOPED_TRACE("job " + std::to_string(i));
        const Result got = collect(*jobs[i]);
        const Result want = reference(*model, options.session, *jobs[i]);
        EXPECT_EQ(got.text, want.text);
        EXPECT_EQ(finish_reason_name(got.finish), std::string(finish_reason_name(want.finish)));
        EXPECT_EQ(got.n_generated, want.n_generated);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (scheduler.active_slots() > 0 && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(scheduler.active_slots(), 0);
    EXPECT_EQ(scheduler.queue_depth(), 0);
    EXPECT_NE(metrics.render(0, 0, 3).find("edgeq_time_to_first_token_seconds_count 8\n"),
              std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Batched, SchedulerModes, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "batched" : "sessions"; });

TEST(Scheduler, StopStringsFullContextAndEmbeddings) {
    Random random;
    SCOPED_TRACE(random.trace());
    const TempModel file(synth_with_vocabulary(), random, "scheduler-stop");
    const auto model = LoadedModel::load(file.path);
    Metrics metrics;
    SchedulerOptions options;
    options.n_slots = 2;
    options.session = {.n_ctx = 40, .n_threads = 1, .n_batch = 16};
    Scheduler scheduler(*model, options, metrics);

    // A stop string taken from the job's own greedy text cuts it at its first occurrence.
    for (int attempt = 0; attempt < 20; ++attempt) {
        auto job = random_job(random, model->n_vocab(), 10);
        job->sampling.temperature = 0.0f;
        job->max_tokens = 12;
        const Result whole = reference(*model, options.session, *job);
        if (whole.text.size() < 4) continue;
        const std::string stop = whole.text.substr(2, 2);
        job->stops = {stop, "never"};
        ASSERT_TRUE(scheduler.submit(job));
        const Result cut = collect(*job);
        EXPECT_EQ(cut.text, whole.text.substr(0, whole.text.find(stop)));
        EXPECT_EQ(cut.finish, FinishReason::stop);
        break;
    }

    // The context ends a job: 36 prompt tokens leave room for 4 decoded tokens, and a fifth
    // is sampled from the last logits.
    auto full = std::make_shared<GenerationJob>();
    full->prompt = testing::random_ids(random, 36, model->n_vocab());
    full->max_tokens = 30;
    full->sampling.temperature = 0.0f;
    ASSERT_TRUE(scheduler.submit(full));
    const Result got = collect(*full);
    const Result want = reference(*model, options.session, *full);
    EXPECT_EQ(got.text, want.text);
    EXPECT_EQ(got.n_generated, want.n_generated);
    if (want.finish == FinishReason::length) {
        EXPECT_EQ(got.n_generated, 5);
    }

    // Embeddings: the normalised mean hidden state of a Session of their own.
    const std::vector<int32_t> ids = testing::random_ids(random, 17, model->n_vocab());
    const std::vector<float> e = scheduler.embed(ids);
    Session session(*model, options.session);
    session.decode(ids);
    const std::vector<float> mean = session.mean_hidden();
    double norm = 0;
    for (float x : mean) norm += double{x} * x;
    ASSERT_EQ(e.size(), mean.size());
    for (size_t i = 0; i < e.size(); ++i) EXPECT_NEAR(e[i], mean[i] / std::sqrt(norm), 1e-6);
    EXPECT_THROW(scheduler.embed(std::vector<int32_t>(41, 3)), Error);  // past the context

    scheduler.shutdown();
    EXPECT_FALSE(scheduler.submit(std::make_shared<GenerationJob>()));
}

}  // namespace
}  // namespace edgeq::server
