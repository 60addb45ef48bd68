#!/bin/sh
# Installs what @self-extend/llama-cpp's build and tests need on a fresh Debian 12 machine:
# a C++17 compiler for the native bridge (and the llama-completion the compatible-mode tests
# build from node-llama-cpp's bundled llama.cpp sources), and git to read those sources out of the
# bundle, and Debian's python3 with numpy and PyYAML for llama.cpp's gguf-py (scripts/gguf-python.mjs:
# tests write GGUF files with llama.cpp's own tools). Idempotent; Debian packages only.
set -eu
missing=""
command -v c++ >/dev/null 2>&1 || missing="$missing g++"
command -v git >/dev/null 2>&1 || missing="$missing git"
/usr/bin/python3 -c "import numpy" >/dev/null 2>&1 || missing="$missing python3-numpy"
/usr/bin/python3 -c "import yaml" >/dev/null 2>&1 || missing="$missing python3-yaml"
if [ -n "$missing" ]; then
  sudo_command=""
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "@self-extend/llama-cpp's tests need these Debian packages, and this machine has no apt-get:$missing; install their equivalents" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo_command="sudo"
    else
      echo "@self-extend/llama-cpp's tests need these Debian packages:$missing; run this as root, or install them first: sudo apt-get install -y$missing" >&2
      exit 1
    fi
  fi
  $sudo_command apt-get update
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo_command apt-get install -y --no-install-recommends $missing
fi
echo "llama-cpp CI dependencies present: c++ ($(c++ --version | head -1)), $(git --version), python3 with numpy $(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')"
