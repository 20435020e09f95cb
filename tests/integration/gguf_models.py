"""Small GGUF models written with gguf-py (an implementation independent of edgeq)."""
import numpy as np
import gguf


def normal(rng, shape, sigma=0.02):
    return (sigma * rng.standard_normal(shape)).astype(np.float32)


def heavy(rng, shape, sigma=0.02):
    """Student-t (3 degrees of freedom) with a few input columns scaled up, as trained weights have."""
    x = rng.standard_t(3, size=shape).astype(np.float32)
    cols = np.where(rng.random(shape[-1]) < 1 / 32, rng.uniform(4, 16, shape[-1]), 1.0).astype(np.float32)
    return (0.6 * sigma * x * cols).astype(np.float32)


def write_model(path, tensors, arch="llama", n_layer=2, extra=None):
    """tensors: {name: float32 array in numpy order (rows, columns)}; written as F32."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(n_layer)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    for key, value in (extra or {}).items():
        if isinstance(value, str):
            w.add_string(key, value)
        else:
            w.add_uint32(key, value)
    for name, array in tensors.items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_like(rng, n_layer=2, n_embd=256, n_ff=512, n_vocab=384, dist=normal):
    """A Llama-shaped set of tensors (numpy order: [out_features, in_features])."""
    t = {"token_embd.weight": dist(rng, (n_vocab, n_embd))}
    for i in range(n_layer):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)
        t[p + "attn_q.weight"] = dist(rng, (n_embd, n_embd))
        t[p + "attn_k.weight"] = dist(rng, (n_embd // 4, n_embd))
        t[p + "attn_v.weight"] = dist(rng, (n_embd // 4, n_embd))
        t[p + "attn_output.weight"] = dist(rng, (n_embd, n_embd))
        t[p + "ffn_norm.weight"] = (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)
        t[p + "ffn_gate.weight"] = dist(rng, (n_ff, n_embd))
        t[p + "ffn_up.weight"] = dist(rng, (n_ff, n_embd))
        t[p + "ffn_down.weight"] = dist(rng, (n_embd, n_ff))
    t["output_norm.weight"] = np.ones(n_embd, dtype=np.float32)
    t["output.weight"] = dist(rng, (n_vocab, n_embd))
    return t


def read_tensors(path):
    """{name: (type name, numpy shape, raw data)} of a GGUF file."""
    r = gguf.GGUFReader(str(path))
    return {t.name: t for t in r.tensors}, r
