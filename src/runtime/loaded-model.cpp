#include "loaded-model.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/quant/dtype.h"

namespace edgeq {

std::unique_ptr<LoadedModel> LoadedModel::load(const std::string& path) {
    return std::make_unique<runtime::GgufModel>(GgufFile::open(path));
}

namespace runtime {
namespace {

class Binder {
  public:
    explicit Binder(const GgufFile& file) : file_(file) {}

    const GgufTensorInfo& find(const std::string& name) const {
        const GgufTensorInfo* t = file_.find_tensor(name);
        if (t == nullptr) fail("{}: tensor {} is missing", file_.path(), name);
        return *t;
    }

    // n_out rows of n_in values, of a type the matmul can take.
    Matrix matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
        const GgufTensorInfo& t = find(name);
        if (t.shape.size() != 2 || t.shape[0] != n_in || t.shape[1] != n_out)
            fail("{}: tensor {} has shape {}, expected {} x {}", file_.path(), name, shape_text(t),
                 n_in, n_out);
        const DType& d = dtype(t.type);
        if (d.to_float == nullptr)
            fail("{}: tensor {} has type {}, which edgeq cannot run", file_.path(), name, d.name);
        if (n_in % d.block_size != 0)
            fail("{}: tensor {} rows of {} values are not whole {} blocks", file_.path(), name,
                 n_in, d.name);
        return {t.type, file_.tensor_data(t), n_in, n_out, t.name, nullptr};
    }

    std::vector<float> vector(const std::string& name, int64_t n) const {
        const GgufTensorInfo& t = find(name);
        if (t.shape.size() != 1 || t.shape[0] != n)
            fail("{}: tensor {} has shape {}, expected {}", file_.path(), name, shape_text(t), n);
        const DType& d = dtype(t.type);
        if (d.to_float == nullptr || n % d.block_size != 0)
            fail("{}: tensor {} has type {}, which edgeq cannot read", file_.path(), name, d.name);
        std::vector<float> v(static_cast<size_t>(n));
        d.to_float(file_.tensor_data(t), v.data(), n);
        return v;
    }

  private:
    static std::string shape_text(const GgufTensorInfo& t) {
        std::string s;
        for (size_t i = 0; i < t.shape.size(); ++i)
            s += (i == 0 ? "" : " x ") + std::to_string(t.shape[i]);
        return s.empty() ? "(scalar)" : s;
    }
    const GgufFile& file_;
};

ModelWeights bind_weights(const GgufFile& file, const ModelSpec& s) {
    const Binder b(file);
    ModelWeights w;
    w.token_embd = b.matrix("token_embd.weight", s.n_embd, s.n_vocab);
    w.output_norm = b.vector("output_norm.weight", s.n_embd);
    w.output = s.tied_output ? w.token_embd : b.matrix("output.weight", s.n_embd, s.n_vocab);
    const int64_t n_q = int64_t{s.n_head} * s.head_dim_k;
    const int64_t n_k = int64_t{s.n_head_kv} * s.head_dim_k;
    const int64_t n_v = int64_t{s.n_head_kv} * s.head_dim_v;
    const int64_t n_attn = int64_t{s.n_head} * s.head_dim_v;
    w.layers.resize(static_cast<size_t>(s.n_layer));
    for (int32_t il = 0; il < s.n_layer; ++il) {
        LayerWeights& l = w.layers[static_cast<size_t>(il)];
        const std::string p = "blk." + std::to_string(il) + ".";
        l.attn_norm = b.vector(p + "attn_norm.weight", s.n_embd);
        l.ffn_norm = b.vector(p + "ffn_norm.weight", s.n_embd);
        if (s.post_norms) {
            l.post_attn_norm = b.vector(p + "post_attention_norm.weight", s.n_embd);
            l.post_ffw_norm = b.vector(p + "post_ffw_norm.weight", s.n_embd);
        }
        if (s.fused_qkv) {
            l.wqkv = b.matrix(p + "attn_qkv.weight", s.n_embd, n_q + n_k + n_v);
        } else {
            l.wq = b.matrix(p + "attn_q.weight", s.n_embd, n_q);
            l.wk = b.matrix(p + "attn_k.weight", s.n_embd, n_k);
            l.wv = b.matrix(p + "attn_v.weight", s.n_embd, n_v);
        }
        if (s.qkv_bias) {
            l.q_bias = b.vector(p + "attn_q.bias", n_q);
            l.k_bias = b.vector(p + "attn_k.bias", n_k);
            l.v_bias = b.vector(p + "attn_v.bias", n_v);
        }
        if (s.qk_norm) {
            l.q_norm = b.vector(p + "attn_q_norm.weight", s.head_dim_k);
            l.k_norm = b.vector(p + "attn_k_norm.weight", s.head_dim_k);
        }
        l.wo = b.matrix(p + "attn_output.weight", n_attn, s.n_embd);
        if (s.fused_gate_up) {
            l.up = b.matrix(p + "ffn_up.weight", s.n_embd, 2 * int64_t{s.n_ff});
        } else {
            l.gate = b.matrix(p + "ffn_gate.weight", s.n_embd, s.n_ff);
            l.up = b.matrix(p + "ffn_up.weight", s.n_embd, s.n_ff);
        }
        l.down = b.matrix(p + "ffn_down.weight", s.n_ff, s.n_embd);
    }
    return w;
}

// EDGEQ_REPACK=0 keeps every matrix as the file holds it (for comparisons).
bool repack_enabled() {
    const char* env = std::getenv("EDGEQ_REPACK");
    return env == nullptr || std::strcmp(env, "0") != 0;
}

// Packs one matrix for the active ISA's kernels, if it has a packed layout for the type, and
// gives the file's pages of its rows back as it goes (they are paged in again if read: the
// token embedding's rows, when the output is tied to it).
void pack(Matrix& m, ThreadPool& pool, const std::shared_ptr<cpu::PackedArena>& arena) {
    if (m.data == nullptr || m.packed != nullptr) return;
    m.packed = cpu::pack_weights(m.type, m.data, m.n_out, m.n_in, pool, active_isa(),
                                 cpu::PackSource::file_mapping, arena);
}

// Every projection, one at a time, in the order a forward pass reads them, into one arena
// (huge pages, and each matrix right after the one read before it).
void pack_weights(ModelWeights& w) {
    if (!repack_enabled()) return;
    std::vector<Matrix*> order;
    for (LayerWeights& l : w.layers) {
        for (Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wo, &l.gate, &l.up, &l.down})
            order.push_back(m);
    }
    order.push_back(&w.output);
    size_t total = 0;
    for (const Matrix* m : order)
        if (m->data != nullptr) total += cpu::packed_bytes(m->type, m->n_out, m->n_in);
    if (total == 0) return;
    const auto arena = cpu::PackedArena::create(total);
    ThreadPool pool(std::min(ThreadPool::hardware_threads(), 8));
    for (Matrix* m : order) pack(*m, pool, arena);
    w.embd_rows_released = w.output.packed != nullptr && w.output.data == w.token_embd.data;
}

}  // namespace

GgufModel::GgufModel(GgufFile file)
    : file_(std::move(file)),
      spec_(model_spec_from_gguf(file_)),
      weights_(bind_weights(file_, spec_)) {
    pack_weights(weights_);
}

const Tokenizer& GgufModel::tokenizer() const {
    std::call_once(tokenizer_once_,
                   [this] { tokenizer_.emplace(Tokenizer::from_metadata(file_.metadata())); });
    return *tokenizer_;
}

}  // namespace runtime
}  // namespace edgeq
