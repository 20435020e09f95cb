// Session: the decoder (decoder.h) with one sequence. A decode() longer than n_batch runs in
// steps of n_batch tokens.
#include <algorithm>

#include "decoder.h"
#include "edgeq/core/error.h"
#include "edgeq/runtime/engine.h"

namespace edgeq {

namespace {

size_t as_size(int64_t n) {
    return static_cast<size_t>(n);
}

}  // namespace

struct Session::Impl {
    Impl(const LoadedModel& model, const SessionOptions& options)
        : decoder(model, options, 1, options.all_logits ? options.n_batch : 1),
          seqs(as_size(decoder.n_batch), 0),
          logits(as_size(decoder.spec.n_vocab)) {}

    runtime::Decoder decoder;
    std::vector<int32_t> seqs;  // n_batch zeros: every token is sequence 0's
    // Results of the last decode().
    std::vector<float> logits;  // n_vocab, or n_tokens x n_vocab with all_logits
    int32_t last_n_tokens = 0;
};

Session::Session(const LoadedModel& model, const SessionOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {}

Session::~Session() = default;

const float* Session::decode(std::span<const int32_t> tokens) {
    Impl& m = *impl_;
    runtime::Decoder& d = m.decoder;
    if (tokens.empty()) fail("decode: no tokens");
    const int64_t n_total = static_cast<int64_t>(tokens.size());
    if (d.n_past[0] + n_total > d.n_ctx)
        fail("decode: {} tokens after {} would overflow the context of {}", n_total, d.n_past[0],
             d.n_ctx);
    for (const int32_t id : tokens) {
        if (id < 0 || id >= d.spec.n_vocab)
            fail("decode: token id {} is outside the vocabulary (0..{})", id, d.spec.n_vocab - 1);
    }
    const bool all = d.options.all_logits;
    const size_t n_vocab = as_size(d.spec.n_vocab);
    if (all && m.logits.size() < as_size(n_total) * n_vocab)
        m.logits.resize(as_size(n_total) * n_vocab);  // grows with the longest decode only
    std::fill(d.hidden_sum.begin(), d.hidden_sum.end(), 0.0);
    m.last_n_tokens = 0;
    for (int64_t done = 0; done < n_total;) {
        const int32_t n = static_cast<int32_t>(std::min<int64_t>(d.n_batch, n_total - done));
        const bool last_chunk = done + n == n_total;
        if (all) {
            d.forward(tokens.data() + done, m.seqs.data(), n, d.rows.data(), n,
                      m.logits.data() + as_size(done) * n_vocab);
        } else {
            d.forward(tokens.data() + done, m.seqs.data(), n, d.rows.data() + (n - 1),
                      last_chunk ? 1 : 0, m.logits.data());
        }
        done += n;
    }
    m.last_n_tokens = static_cast<int32_t>(n_total);
    return all ? m.logits.data() + as_size(n_total - 1) * n_vocab : m.logits.data();
}

const float* Session::logits_at(int32_t i) const {
    const Impl& m = *impl_;
    if (i < 0 || i >= m.last_n_tokens)
        fail("logits_at: position {} is outside the last decode's {} tokens", i, m.last_n_tokens);
    if (m.decoder.options.all_logits)
        return m.logits.data() + as_size(i) * as_size(m.decoder.spec.n_vocab);
    if (i != m.last_n_tokens - 1)
        fail("logits_at: only the last position is kept (SessionOptions::all_logits is off)");
    return m.logits.data();
}

void Session::set_all_logits(bool on) {
    impl_->decoder.options.all_logits = on;
    impl_->last_n_tokens = 0;
}

std::vector<float> Session::mean_hidden() const {
    const Impl& m = *impl_;
    if (m.last_n_tokens == 0) fail("mean_hidden: nothing decoded yet");
    const std::vector<double>& sum = m.decoder.hidden_sum;
    std::vector<float> mean(sum.size());
    for (size_t j = 0; j < mean.size(); ++j) mean[j] = static_cast<float>(sum[j] / m.last_n_tokens);
    return mean;
}

int32_t Session::n_past() const {
    return impl_->decoder.n_past[0];
}

int32_t Session::n_ctx() const {
    return impl_->decoder.n_ctx;
}

void Session::reset() {
    impl_->decoder.n_past[0] = 0;
}

void Session::truncate(int32_t n_past) {
    int32_t& past = impl_->decoder.n_past[0];
    if (n_past < 0 || n_past > past)
        fail("truncate: {} is outside the cache's 0..{} tokens", n_past, past);
    past = n_past;
}

}  // namespace edgeq
