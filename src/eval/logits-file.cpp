#include "edgeq/eval/logits-file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "edgeq/core/error.h"
#include "edgeq/core/temp-files.h"

namespace edgeq {
namespace {

constexpr char k_magic[8] = {'E', 'D', 'G', 'E', 'Q', 'L', 'G', 'P'};
constexpr size_t k_record_fixed = 12;  // nll, top, top_log_prob

void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_f32(uint8_t* p, float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    put_u32(p, u);
}
uint32_t get_u32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
    return v;
}
uint64_t get_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
    return v;
}
float get_f32(const uint8_t* p) {
    const uint32_t u = get_u32(p);
    float v;
    std::memcpy(&v, &u, 4);
    return v;
}

}  // namespace

size_t logits_record_bytes(uint32_t n_vocab) {
    return k_record_fixed + 2 * ((size_t{n_vocab} + 1) / 2 * 2);
}

uint64_t hash_tokens(std::span<const int32_t> tokens) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const int32_t t : tokens) {
        const uint32_t u = static_cast<uint32_t>(t);
        for (int i = 0; i < 4; ++i) {
            h ^= (u >> (8 * i)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

LogitStats logit_stats(const float* logits, uint32_t n_vocab) {
    LogitStats st;
    st.max_logit = logits[0];
    for (uint32_t i = 1; i < n_vocab; ++i) {
        if (logits[i] > st.max_logit) {
            st.max_logit = logits[i];
            st.top = static_cast<int32_t>(i);
        }
    }
    double sum = 0;
    for (uint32_t i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - st.max_logit);
    st.log_sum = std::log(sum);
    return st;
}

LogProbGrid::LogProbGrid(float top_log_prob) {
    if (top_log_prob > floor) step = (static_cast<double>(top_log_prob) - floor) / 65535.0;
}

int64_t LogProbGrid::index(double log_prob) const {
    if (step <= 0) return 0;
    return static_cast<int64_t>(std::llround((log_prob - floor) / step));
}

LogitsFileWriter::LogitsFileWriter(std::string path, const LogitsFileHeader& header)
    : path_(std::move(path)), header_(header) {
    if (header_.n_vocab == 0 || header_.n_ctx < 4 || header_.n_chunks == 0)
        fail("{}: cannot save logits of {} chunks of {} tokens over {} tokens of vocabulary", path_,
             header_.n_chunks, header_.n_ctx, header_.n_vocab);
    std::string pattern = path_ + ".tmp-XXXXXX";
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0)
        fail("{}: cannot create a temporary file beside it: {}", path_, std::strerror(errno));
    ::fchmod(fd, 0644);  // mkstemp's 0600 would surprise a user sharing the file
    ::close(fd);
    temp_path_ = pattern;
    register_temp_file(temp_path_);
    out_.open(temp_path_, std::ios::binary | std::ios::trunc);
    if (!out_) fail("{}: cannot write {}", path_, temp_path_);
    uint8_t h[k_logits_header_bytes] = {};
    std::memcpy(h, k_magic, 8);
    put_u32(h + 8, k_logits_file_version);
    put_u32(h + 12, header_.n_vocab);
    put_u32(h + 16, header_.n_ctx);
    put_u32(h + 20, header_.n_chunks);
    put_u32(h + 24, scored_per_chunk(header_.n_ctx));
    put_u32(h + 28, static_cast<uint32_t>(logits_record_bytes(header_.n_vocab)));
    put_u64(h + 32, header_.tokens_hash);
    put_f32(h + 40, k_log_prob_floor);
    out_.write(reinterpret_cast<const char*>(h), sizeof h);
}

LogitsFileWriter::~LogitsFileWriter() {
    if (!finished_ && !temp_path_.empty()) {
        out_.close();
        ::unlink(temp_path_.c_str());
    }
    unregister_temp_file(temp_path_);
}

void LogitsFileWriter::encode(const float* logits, uint32_t n_vocab, int32_t target,
                              uint8_t* record) {
    const LogitStats st = logit_stats(logits, n_vocab);
    const float top_log_prob = static_cast<float>(-st.log_sum);
    const float nll = static_cast<float>(-st.log_prob(logits[target]));
    put_f32(record, nll);
    put_u32(record + 4, static_cast<uint32_t>(st.top));
    put_f32(record + 8, top_log_prob);
    const LogProbGrid grid(top_log_prob);
    uint8_t* codes = record + k_record_fixed;
    for (uint32_t i = 0; i < n_vocab; ++i) {
        const double lp = st.log_prob(logits[i]);
        const int64_t k = std::clamp<int64_t>(grid.index(lp), 0, 65535);
        codes[2 * i] = static_cast<uint8_t>(k & 0xff);
        codes[2 * i + 1] = static_cast<uint8_t>(k >> 8);
    }
    if (n_vocab % 2 != 0) codes[2 * n_vocab] = codes[2 * n_vocab + 1] = 0;
}

void LogitsFileWriter::append(const uint8_t* records, size_t n) {
    out_.write(reinterpret_cast<const char*>(records),
               static_cast<std::streamsize>(n * logits_record_bytes(header_.n_vocab)));
    if (!out_) fail("{}: cannot write {} (disk full?)", path_, temp_path_);
    n_records_ += n;
}

void LogitsFileWriter::finish() {
    const uint64_t expected = uint64_t{header_.n_chunks} * scored_per_chunk(header_.n_ctx);
    if (n_records_ != expected)
        fail("{}: {} positions written, {} expected", path_, n_records_, expected);
    out_.close();
    if (!out_) fail("{}: cannot write {} (disk full?)", path_, temp_path_);
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
        fail("{}: cannot rename {} into place: {}", path_, temp_path_, std::strerror(errno));
    finished_ = true;
}

LogitsFile LogitsFile::open(const std::string& path) {
    MappedFile file(path);
    LogitsFile f = parse(file.bytes(), path);
    f.file_ = std::move(file);
    return f;
}

LogitsFile LogitsFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
    LogitsFile f;
    f.name_ = name;
    f.bytes_ = bytes;
    if (bytes.size() < k_logits_header_bytes || std::memcmp(bytes.data(), k_magic, 8) != 0)
        fail(
            "{}: not an edgeq logits file (expected the magic EDGEQLGP and a 64-byte header; "
            "make one with edgeq eval --save-logits)",
            name);
    const uint8_t* h = bytes.data();
    const uint32_t version = get_u32(h + 8);
    if (version != k_logits_file_version)
        fail("{}: logits file version {}, this edgeq reads version {}", name, version,
             k_logits_file_version);
    LogitsFileHeader& hd = f.header_;
    hd.n_vocab = get_u32(h + 12);
    hd.n_ctx = get_u32(h + 16);
    hd.n_chunks = get_u32(h + 20);
    const uint32_t n_scored = get_u32(h + 24);
    const uint32_t record_bytes = get_u32(h + 28);
    hd.tokens_hash = get_u64(h + 32);
    const float floor = get_f32(h + 40);
    if (hd.n_vocab == 0 || hd.n_vocab > (1u << 24))
        fail("{}: header: vocabulary of {} tokens (expected 1..16777216)", name, hd.n_vocab);
    if (hd.n_ctx < 4 || hd.n_ctx > (1u << 24))
        fail("{}: header: context of {} tokens (expected 4..16777216)", name, hd.n_ctx);
    if (hd.n_chunks == 0) fail("{}: header: no chunks", name);
    if (n_scored != scored_per_chunk(hd.n_ctx))
        fail("{}: header: {} positions per chunk, expected {} for a context of {}", name, n_scored,
             scored_per_chunk(hd.n_ctx), hd.n_ctx);
    if (record_bytes != logits_record_bytes(hd.n_vocab))
        fail("{}: header: records of {} bytes, expected {} for {} tokens", name, record_bytes,
             logits_record_bytes(hd.n_vocab), hd.n_vocab);
    if (floor != k_log_prob_floor)
        fail("{}: header: log-probability floor {}, expected {}", name, floor, k_log_prob_floor);
    f.record_bytes_ = record_bytes;
    // Compared by division first: a hostile header's product could overflow.
    const uint64_t fit = (bytes.size() - k_logits_header_bytes) / record_bytes;
    const uint64_t expected = fit < f.n_records()
                                  ? std::numeric_limits<uint64_t>::max()
                                  : k_logits_header_bytes + f.n_records() * record_bytes;
    if (bytes.size() != expected)
        fail("{}: {} bytes, expected {:.0f} for {} chunks of {} positions ({})", name, bytes.size(),
             k_logits_header_bytes + static_cast<double>(f.n_records()) * record_bytes, hd.n_chunks,
             n_scored, bytes.size() < expected ? "the file is truncated" : "trailing bytes");
    return f;
}

void LogitsFile::release(uint64_t first, uint64_t n) const {
    if (file_.data() == nullptr || first >= n_records()) return;
    n = std::min(n, n_records() - first);
    file_.release(k_logits_header_bytes + static_cast<size_t>(first) * record_bytes_,
                  static_cast<size_t>(n) * record_bytes_);
}

BaseRecord LogitsFile::record(uint64_t i) const {
    if (i >= n_records()) fail("{}: record {} of {}", name_, i, n_records());
    const size_t offset = k_logits_header_bytes + static_cast<size_t>(i) * record_bytes_;
    const uint8_t* p = bytes_.data() + offset;
    BaseRecord r;
    r.nll = get_f32(p);
    r.top = static_cast<int32_t>(get_u32(p + 4));
    r.top_log_prob = get_f32(p + 8);
    r.codes = p + k_record_fixed;
    if (!std::isfinite(r.nll) || r.nll < -1e-3f || r.top < 0 ||
        static_cast<uint32_t>(r.top) >= header_.n_vocab || !std::isfinite(r.top_log_prob) ||
        r.top_log_prob > 1e-3f)
        fail("{}: record {} at offset {} is corrupt (nll {}, top token {}, top log-prob {})", name_,
             i, offset, r.nll, r.top, r.top_log_prob);
    return r;
}

}  // namespace edgeq
