#!/usr/bin/env bash
# Builds the llama.cpp tools that bench/ compares edgeq against, from the llama.cpp that
# llama-cpp-python vendors in its source distribution (one pinned, reproducible version).
#
#   bench/build-llamacpp.sh            # builds once, then prints the bin directory
#   LLAMA_CPP_BIN=$(bench/build-llamacpp.sh | tail -n1)
#
# Environment:
#   LLAMA_CPP_BUILD           cache directory (default ~/.cache/edgeq/llama.cpp)
#   LLAMA_CPP_PYTHON_VERSION  llama-cpp-python version to take llama.cpp from (default 0.3.36)
#   PYTHON                    python with pip, used only for `pip download` (default python3)
#   JOBS                      parallel build jobs (default: all cores)
#
# The build is skipped when every tool already exists. Progress goes to stderr; the only
# line on stdout is the bin directory.
set -euo pipefail

version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
cache="${LLAMA_CPP_BUILD:-$HOME/.cache/edgeq/llama.cpp}"
python="${PYTHON:-python3}"
jobs="${JOBS:-$(nproc)}"
tools=(llama-quantize llama-simple llama-imatrix llama-perplexity llama-bench)

src_root="$cache/llama_cpp_python-$version"
build_dir="$cache/build-$version"
bin_dir="$build_dir/bin"

have_all() {
    local t
    for t in "${tools[@]}"; do
        [[ -x "$bin_dir/$t" ]] || return 1
    done
}

if have_all; then
    echo "build-llamacpp: tools already built in $bin_dir" >&2
    echo "$bin_dir"
    exit 0
fi

mkdir -p "$cache/sdist"
sdist="$cache/sdist/llama_cpp_python-$version.tar.gz"
if [[ ! -f "$sdist" ]]; then
    echo "build-llamacpp: downloading llama-cpp-python $version (source distribution)" >&2
    "$python" -m pip download --no-binary :all: --no-deps -d "$cache/sdist" \
        "llama-cpp-python==$version" >&2
fi
if [[ ! -f "$src_root/vendor/llama.cpp/CMakeLists.txt" ]]; then
    echo "build-llamacpp: extracting $sdist" >&2
    tmp_extract="$(mktemp -d "$cache/extract.XXXXXX")"
    tar -xzf "$sdist" -C "$tmp_extract"
    rm -rf "$src_root"
    mv "$tmp_extract/llama_cpp_python-$version" "$src_root"
    rmdir "$tmp_extract"
fi

llama_src="$src_root/vendor/llama.cpp"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
echo "build-llamacpp: configuring $llama_src -> $build_dir" >&2
cmake -S "$llama_src" -B "$build_dir" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON \
    -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=OFF \
    -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$bin_dir" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$bin_dir" >&2
echo "build-llamacpp: building ${tools[*]} with $jobs jobs" >&2
cmake --build "$build_dir" --parallel "$jobs" --target "${tools[@]}" >&2

if ! have_all; then
    echo "build-llamacpp: error: build finished but a tool is missing from $bin_dir" >&2
    exit 1
fi
echo "$bin_dir"
