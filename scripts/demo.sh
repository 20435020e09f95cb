#!/usr/bin/env bash
# The main job: `edgeq demo` on the default model (Gemma 3 270M, installed by scripts/setup.sh):
# the F16 baseline, an importance matrix, ten quantized variants, each measured for quality
# (perplexity, KL divergence, same top token) on held-apart text and for speed and memory on
# this machine; writes report.md, report.json and tradeoff.svg to out/demo/ and prints the
# table. Extra arguments go to edgeq demo (e.g. --model FILE.gguf, --types Q4_K_M Q4_0).
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/edgeq demo --out "${OUT:-out/demo}" "$@"
