#!/usr/bin/env bash
# Builds node-llama-cpp's own CMake project (its `llama/` folder: the addon sources and the llama.cpp
# release node-llama-cpp 3.21.1 pins, unpacked from its gitRelease.bundle with the patch it applies)
# for one GPU type and installs the result where node-llama-cpp looks for a local prebuilt binary
# (`node-llama-cpp/bins/<platform folder>/` with a build metadata file), so that
# `getLlama({ gpu, build: "never" })` loads it. For machines without network or a prebuilt package
# small enough to carry (the CUDA one is 143 MB compressed): used for the GPU numbers in the README.
#
#   gpu-build-node-llama-cpp.sh <llama folder> <node_modules folder> <cuda|cpu> [CUDA architectures, default 90]
#
# <node_modules folder> holds node-llama-cpp, node-addon-api and node-api-headers (Node-API's C
# headers, which stand in for cmake-js's download of Node's headers). `node` must be on PATH (the
# project's CMake file asks it where node-addon-api is). FlashAttention kernels are not compiled:
# the adapter runs with flash attention off, and they are most of a CUDA build's time.
set -euo pipefail
llama_folder=$1
modules=$2
gpu=$3
architectures=${4:-90}
build=$(mktemp -d)
# node-llama-cpp's CMake file resolves node-addon-api from its own folder's parent.
[ -e "$llama_folder/../node_modules" ] || ln -s "$modules" "$llama_folder/../node_modules"
options=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_JS_INC=$modules/node-api-headers/include" -DGGML_NATIVE=OFF
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF)
case "$gpu" in
  cuda)
    folder=linux-x64-cuda
    options+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$architectures" -DGGML_CUDA_FA=OFF)
    ;;
  cpu)
    folder=linux-x64
    gpu=false
    ;;
  *)
    echo "gpu-build-node-llama-cpp.sh: GPU type \"$gpu\" is not one of cuda, cpu" >&2
    exit 2
    ;;
esac
cmake -S "$llama_folder" -B "$build" "${options[@]}"
cmake --build "$build" --target llama-addon -j"$(nproc)"
destination="$modules/node-llama-cpp/bins/$folder"
rm -rf "$destination"
mkdir -p "$destination"
# The addon finds its libraries beside itself (RPATH $ORIGIN), so they all go in one folder.
find "$build" \( -name "*.so" -o -name "*.so.*" -o -name "llama-addon.node" \) -type f -exec cp {} "$destination/" \;
release=$(node -p "require('$llama_folder/llama.cpp.info.json').tag")
cat >"$destination/_nlcBuildMetadata.json" <<EOF
{"buildOptions":{"customCmakeOptions":{},"progressLogs":true,"platform":"linux","platformInfo":{"name":"$(. /etc/os-release && echo "$NAME")","version":"$(. /etc/os-release && echo "$VERSION_ID")"},"arch":"x64","gpu":$([ "$gpu" = false ] && echo false || echo "\"$gpu\""),"llamaCpp":{"repo":"ggml-org/llama.cpp","release":"$release"}}}
EOF
ls -la "$destination"
