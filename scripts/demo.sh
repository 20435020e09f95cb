#!/usr/bin/env bash
# The main job, for now: make a Llama-shaped model with random weights (167 M parameters, the
# Llama tokenizer when ../shared/data is present), look inside it, quantize it to Q4_K_M and
# look at the result. Expects scripts/setup.sh to have run. Files go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
mkdir -p "$OUT"
VOCAB=${EDGEQ_SHARED_DATA:-$(cd .. && pwd)/shared/data}/vocab/ggml-vocab-llama-spm.gguf
vocab_args=()
[ -f "$VOCAB" ] && vocab_args=(--vocab-from "$VOCAB")

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
