// Fuzzes the reader of edgeq eval's base logits files: any input either parses or is refused
// with an edgeq::Error; every record of a parsed file lies inside the input and its fields
// are usable (a finite grid). The seed in tests/fuzz/corpus/logits-file/ was written by
// `edgeq eval FIXTURE --text T -c 8 --chunks 2 --save-logits` on the llama2-spm fixture.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "edgeq/core/error.h"
#include "edgeq/eval/logits-file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const edgeq::LogitsFile file = edgeq::LogitsFile::parse({data, size}, "fuzz.lgp");
        const uint32_t n_vocab = file.header().n_vocab;
        for (uint64_t i = 0; i < file.n_records() && i < 64; ++i) {
            try {
                const edgeq::BaseRecord r = file.record(i);
                // What the reader promises, checked here so that a broken promise is a crash.
                if (r.codes < data || r.codes + 2 * size_t{n_vocab} > data + size) std::abort();
                const edgeq::LogProbGrid grid(r.top_log_prob);
                double sum = 0;
                for (uint32_t t = 0; t < n_vocab; ++t) sum += grid.value(r.code(t));
                if (!std::isfinite(sum) || r.top < 0 || static_cast<uint32_t>(r.top) >= n_vocab)
                    std::abort();
            } catch (const edgeq::Error&) {
            }
        }
    } catch (const edgeq::Error&) {
    }
    return 0;
}
