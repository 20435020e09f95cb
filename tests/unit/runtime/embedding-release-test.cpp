// A tied, packed embedding: its rows are read from the file mapping for the lookup and given
// back as they are read, so that a long prompt never holds the file's copy of the embedding in
// memory beside the packed one (decoder.cpp, release_embedding_row).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "edgeq/runtime/cpu/matmul.h"
#include "edgeq/runtime/engine.h"
#include "synth-model.h"
#include "test-random.h"

namespace edgeq {
namespace {

using testing::random_ids;
using testing::Synth;
using testing::TempModel;

// /proc/self/status's field `key` in KiB, or -1.
long long status_kib(const std::string& key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
    }
    return -1;
}

// Resets the process's peak resident size (VmHWM) to its present size (Linux 4.0 and later).
bool reset_peak_rss() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    return static_cast<bool>(out);
}

TEST(EmbeddingRelease, LongPromptDoesNotMapTheTiedEmbedding) {
    if (!cpu::packs(GgmlType::Q8_0)) GTEST_SKIP() << "the active ISA packs no Q8_0 (no release)";
    testing::Random random;
    SCOPED_TRACE(random.trace());
    Synth m;  // no output.weight: the output is the embedding
    m.tied = true;
    m.n_layer = 1;
    m.n_embd = 256;
    m.n_vocab = 65536;  // a Q8_0 embedding of 17 MiB
    m.embd_type = GgmlType::Q8_0;
    m.n_ctx_train = 1024;
    const TempModel file(m, random, "embedding-release");
    const auto model = LoadedModel::load(file.path);
    const long long embd_kib =
        static_cast<long long>(row_size(GgmlType::Q8_0, m.n_embd)) * m.n_vocab / 1024;

    Session session(*model, {.n_ctx = 1024, .n_threads = 2, .n_batch = 512});
    // A first prompt grows the session's buffers to their size; the second is measured.
    session.decode(random_ids(random, 400, m.n_vocab));
    session.reset();
    if (!reset_peak_rss()) GTEST_SKIP() << "cannot reset the peak RSS (/proc/self/clear_refs)";
    const long long before = status_kib("VmRSS");
    const float* logits = session.decode(random_ids(random, 400, m.n_vocab));
    ASSERT_NE(logits, nullptr);
    const long long grown = status_kib("VmHWM") - before;
    // 400 random rows of 272 bytes touch every 64 KiB of the embedding's file pages; released
    // one row at a time, at most a few 2 MiB windows of them are mapped at once.
    EXPECT_LT(grown, embd_kib / 3) << "peak RSS grew by " << grown << " KiB during the prompt; "
                                   << "the embedding is " << embd_kib << " KiB";
}

}  // namespace
}  // namespace edgeq
