// BatchSession: the decoder (decoder.h) with n_seq sequences. A decode() is checked whole before
// anything runs, then runs in steps of n_batch items.
#include "edgeq/runtime/batch-session.h"

#include <algorithm>

#include "decoder.h"
#include "edgeq/core/error.h"

namespace edgeq {

namespace {

size_t as_size(int64_t n) {
    return static_cast<size_t>(n);
}

int32_t checked_n_seq(int32_t n_seq) {
    if (n_seq < 1) fail("BatchSession: {} sequences; expected at least 1", n_seq);
    return n_seq;
}

int32_t logits_rows(const SessionOptions& options, int32_t n_seq) {
    return options.all_logits ? std::max(options.n_batch, n_seq) : n_seq;
}

}  // namespace

struct BatchSession::Impl {
    Impl(const LoadedModel& model, const SessionOptions& options, int32_t n_seq)
        : decoder(model, options, checked_n_seq(n_seq), logits_rows(options, n_seq)),
          max_logits(logits_rows(options, n_seq)),
          ids(as_size(decoder.n_batch)),
          seqs(as_size(decoder.n_batch)),
          out_rows(as_size(decoder.n_batch)),
          counts(as_size(n_seq)),
          logits_items(as_size(max_logits)),
          logits(as_size(max_logits) * as_size(decoder.spec.n_vocab)) {}

    void check_seq(const char* what, int32_t seq) const {
        if (seq < 0 || seq >= decoder.n_seq)
            fail("{}: sequence {} is outside 0..{}", what, seq, decoder.n_seq - 1);
    }

    runtime::Decoder decoder;
    int32_t max_logits = 0;  // items of one decode() that may want logits
    // One step's items, and which of them want logits (rows of the step).
    std::vector<int32_t> ids, seqs, out_rows;
    std::vector<int32_t> counts;  // per sequence: its items in the decode() being checked
    // Results of the last decode(): the item index of each logits row, ascending.
    std::vector<int32_t> logits_items;
    int32_t n_logits = 0;
    std::vector<float> logits;  // max_logits x n_vocab
};

BatchSession::BatchSession(const LoadedModel& model, const SessionOptions& options, int32_t n_seq)
    : impl_(std::make_unique<Impl>(model, options, n_seq)) {}

BatchSession::~BatchSession() = default;

void BatchSession::decode(std::span<const BatchItem> items) {
    Impl& m = *impl_;
    runtime::Decoder& d = m.decoder;
    if (items.empty()) fail("decode: no items");
    // Everything is checked before the first step, so that an Error leaves every cache as it
    // was.
    std::fill(m.counts.begin(), m.counts.end(), 0);
    int64_t n_want = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const BatchItem& item = items[i];
        if (item.seq < 0 || item.seq >= d.n_seq)
            fail("decode: item {} has sequence {}, outside 0..{}", i, item.seq, d.n_seq - 1);
        if (item.token < 0 || item.token >= d.spec.n_vocab)
            fail("decode: item {} has token id {}, outside the vocabulary (0..{})", i, item.token,
                 d.spec.n_vocab - 1);
        ++m.counts[as_size(item.seq)];
        n_want += item.want_logits ? 1 : 0;
    }
    for (int32_t seq = 0; seq < d.n_seq; ++seq) {
        const int32_t count = m.counts[as_size(seq)], past = d.n_past[as_size(seq)];
        if (int64_t{past} + count > d.n_ctx)
            fail("decode: {} tokens after {} would overflow sequence {}'s context of {}", count,
                 past, seq, d.n_ctx);
    }
    if (n_want > m.max_logits)
        fail(
            "decode: {} items want logits, more than the {} kept (n_seq, or n_batch with "
            "SessionOptions::all_logits)",
            n_want, m.max_logits);

    m.n_logits = 0;
    const size_t n_vocab = as_size(d.spec.n_vocab);
    const size_t n_items = items.size();
    for (size_t done = 0; done < n_items;) {
        const size_t n = std::min(as_size(d.n_batch), n_items - done);
        int32_t n_out = 0;
        for (size_t i = 0; i < n; ++i) {
            const BatchItem& item = items[done + i];
            m.ids[i] = item.token;
            m.seqs[i] = item.seq;
            if (!item.want_logits) continue;
            m.out_rows[as_size(n_out++)] = static_cast<int32_t>(i);
            m.logits_items[as_size(m.n_logits) + as_size(n_out) - 1] =
                static_cast<int32_t>(done + i);
        }
        d.forward(m.ids.data(), m.seqs.data(), static_cast<int32_t>(n), m.out_rows.data(), n_out,
                  m.logits.data() + as_size(m.n_logits) * n_vocab);
        m.n_logits += n_out;
        done += n;
    }
}

const float* BatchSession::logits(int32_t i) const {
    const Impl& m = *impl_;
    const auto end = m.logits_items.begin() + m.n_logits;
    const auto it = std::lower_bound(m.logits_items.begin(), end, i);
    if (it == end || *it != i) fail("logits: item {} of the last decode did not want logits", i);
    return m.logits.data() + as_size(it - m.logits_items.begin()) * as_size(m.decoder.spec.n_vocab);
}

int32_t BatchSession::n_seq() const {
    return impl_->decoder.n_seq;
}

int32_t BatchSession::n_ctx() const {
    return impl_->decoder.n_ctx;
}

int32_t BatchSession::n_past(int32_t seq) const {
    impl_->check_seq("n_past", seq);
    return impl_->decoder.n_past[as_size(seq)];
}

void BatchSession::reset(int32_t seq) {
    impl_->check_seq("reset", seq);
    impl_->decoder.n_past[as_size(seq)] = 0;
}

void BatchSession::truncate(int32_t seq, int32_t n_past) {
    impl_->check_seq("truncate", seq);
    int32_t& past = impl_->decoder.n_past[as_size(seq)];
    if (n_past < 0 || n_past > past)
        fail("truncate: {} is outside sequence {}'s 0..{} tokens", n_past, seq, past);
    past = n_past;
}

}  // namespace edgeq
