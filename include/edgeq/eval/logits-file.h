// A base model's next-token distributions, saved once by `edgeq eval --save-logits` so that
// quantized variants can be compared with it (`--kld-base`) without running it again.
//
//   LogitsFileHeader h{.n_vocab = 262144, .n_ctx = 512, .n_chunks = 20, .tokens_hash = hash};
//   LogitsFileWriter out("base.logits", h);
//   out.append(logits, target);           // once per scored position, in order
//   out.finish();                         // renamed into place only now
//   LogitsFile base = LogitsFile::open("base.logits");
//   BaseRecord r = base.record(i);        // r.nll, r.top, r.code(token), r.log_prob(token)
//
// Format (version 1, little-endian): a 64-byte header
//     char magic[8] = "EDGEQLGP"; u32 version; u32 n_vocab; u32 n_ctx; u32 n_chunks;
//     u32 n_scored (positions per chunk, n_ctx - 1 - n_ctx / 2); u32 record_bytes;
//     u64 tokens_hash (FNV-1a of the evaluated token ids); f32 floor; zeros to 64 bytes,
// then n_chunks x n_scored records of record_bytes each:
//     f32 nll (-log p of the next token); i32 top (the most likely token, first of ties);
//     f32 top_log_prob; u16 code[n_vocab], padded to 4 bytes.
// A token's log-probability is kept on a grid of 65535 steps from `floor` (-16 nats) up to
// top_log_prob: code k >= 1 stands for floor + k * step, code 0 for "at or below floor"
// (dropped from the KL divergence, as llama-perplexity drops them). That is 2 bytes per
// vocabulary entry and a resolution of about 2.4e-4 nats.
#pragma once

#include <cstdint>
#include <fstream>
#include <span>
#include <string>

#include "edgeq/core/mapped-file.h"

namespace edgeq {

struct LogitsFileHeader {
    uint32_t n_vocab = 0;
    uint32_t n_ctx = 0;
    uint32_t n_chunks = 0;
    uint64_t tokens_hash = 0;
};

constexpr float k_log_prob_floor = -16.0f;
constexpr uint32_t k_logits_file_version = 1;
constexpr size_t k_logits_header_bytes = 64;

// Positions scored per chunk of n_ctx tokens: n_ctx / 2 .. n_ctx - 2, each predicting the next.
inline uint32_t scored_per_chunk(uint32_t n_ctx) {
    return n_ctx - 1 - n_ctx / 2;
}
// Bytes of one record for a vocabulary of n_vocab tokens.
size_t logits_record_bytes(uint32_t n_vocab);
// FNV-1a (64-bit) of token ids as little-endian int32: identifies the evaluated text.
uint64_t hash_tokens(std::span<const int32_t> tokens);

// A row of logits' maximum, its first index and log(sum(exp(logit - max))), summed in double
// over single-precision exponentials (as llama-perplexity does). A token's log-probability is
// then logit - max_logit - log_sum.
struct LogitStats {
    float max_logit = 0;
    int32_t top = 0;
    double log_sum = 0;
    double log_prob(float logit) const { return static_cast<double>(logit) - max_logit - log_sum; }
};
LogitStats logit_stats(const float* logits, uint32_t n_vocab);

// The log-probability grid of one position: step = (top_log_prob - floor) / 65535.
struct LogProbGrid {
    double floor = k_log_prob_floor;
    double step = 0;  // 0 when top_log_prob <= floor (nothing is kept)
    explicit LogProbGrid(float top_log_prob);
    // The grid index nearest `log_prob`, unclamped (may be <= 0 or > 65535).
    int64_t index(double log_prob) const;
    double value(int64_t k) const { return floor + static_cast<double>(k) * step; }
};

// Writes a logits file to a temporary file beside `path`, renamed into place by finish().
class LogitsFileWriter {
  public:
    LogitsFileWriter(std::string path, const LogitsFileHeader& header);
    ~LogitsFileWriter();
    LogitsFileWriter(const LogitsFileWriter&) = delete;
    LogitsFileWriter& operator=(const LogitsFileWriter&) = delete;

    // Encodes one position into `record` (logits_record_bytes(n_vocab) bytes): the logits
    // (n_vocab floats) and the token that followed. Thread-safe (touches only `record`).
    static void encode(const float* logits, uint32_t n_vocab, int32_t target, uint8_t* record);
    // Appends `n` encoded records; after n_chunks x n_scored of them, call finish().
    void append(const uint8_t* records, size_t n);
    void finish();

  private:
    std::string path_, temp_path_;
    LogitsFileHeader header_;
    std::ofstream out_;
    uint64_t n_records_ = 0;
    bool finished_ = false;
};

// One position of the base model, read from the mapped file.
struct BaseRecord {
    float nll = 0;
    int32_t top = 0;
    float top_log_prob = 0;
    const uint8_t* codes = nullptr;  // n_vocab little-endian u16
    uint16_t code(uint32_t token) const {
        return static_cast<uint16_t>(codes[2 * token] | (codes[2 * token + 1] << 8));
    }
};

class LogitsFile {
  public:
    // Maps and checks the file (magic, version, sizes; truncation). Throws an Error naming it.
    static LogitsFile open(const std::string& path);
    // Checks `bytes` (a whole file) as open() does; `name` is used in messages.
    static LogitsFile parse(std::span<const uint8_t> bytes, const std::string& name);

    const LogitsFileHeader& header() const { return header_; }
    uint64_t n_records() const {
        return uint64_t{header_.n_chunks} * scored_per_chunk(header_.n_ctx);
    }
    // Record i (< n_records()); throws an Error if its fields are impossible (NaN, a token
    // outside the vocabulary).
    BaseRecord record(uint64_t i) const;
    const std::string& name() const { return name_; }
    // Drops records [first, first + n) from resident memory once read (a file opened by
    // open() only; they are paged in again if read again).
    void release(uint64_t first, uint64_t n) const;

  private:
    MappedFile file_;
    std::span<const uint8_t> bytes_;
    std::string name_;
    LogitsFileHeader header_;
    size_t record_bytes_ = 0;
};

}  // namespace edgeq
