#!/bin/sh
# Installs what @self-extend/llama-cpp's build and tests need on a fresh Debian 12 machine:
# a C++17 compiler for the native bridge (and the llama-completion the compatible-mode tests
# build from node-llama-cpp's bundled llama.cpp sources), and git to read those sources out of the
# bundle. Idempotent; Debian packages only.
set -eu
missing=""
command -v c++ >/dev/null 2>&1 || missing="$missing g++"
command -v git >/dev/null 2>&1 || missing="$missing git"
if [ -n "$missing" ]; then
  sudo_command=""
  if [ "$(id -u)" -ne 0 ]; then sudo_command="sudo"; fi
  $sudo_command apt-get update
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo_command apt-get install -y --no-install-recommends $missing
fi
echo "llama-cpp CI dependencies present: c++ ($(c++ --version | head -1)), $(git --version)"
