#!/bin/sh
# The system packages the tests and the conformance suite need on a fresh Debian machine, installed
# only when missing (idempotent, quick when everything is there), from Debian's packages only:
#   - a C++17 compiler and git: the llama.cpp adapter's native bridge and the llama-completion the
#     compatible-mode tests build from node-llama-cpp's bundled sources;
#   - Mesa's EGL/GLES drivers (Dawn's OpenGL ES backend on llvmpipe), Debian's chromium (the browser
#     test) and lavapipe (the float16 test): the WebGPU adapter.
# Run by `pnpm test` and `pnpm conformance`, so the README's two commands set a fresh machine up
# themselves. Without root (or password-less sudo) each script names what is missing and stops.
set -eu
cd "$(dirname "$0")/.."
sh packages/llama-cpp/scripts/install-ci-dependencies.sh
sh packages/webgpu/scripts/install-ci-dependencies.sh
