#!/bin/sh
# Installs what @self-extend/webgpu's tests need on a fresh Debian 12 machine without a GPU.
# Idempotent; Debian packages only (no other downloads; Playwright never downloads a browser).
#   - Mesa's EGL/GLES drivers: Dawn's OpenGL ES backend on llvmpipe (the default CPU WebGPU device).
#   - chromium: the headless browser test (its SwiftShader provides WebGPU in the page).
#   - libvulkan1: lets Dawn in Node also use Chromium's SwiftShader Vulkan ICD when asked
#     (SELF_EXTEND_WEBGPU_BACKEND=vulkan VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json).
set -eu
packages="libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri chromium libvulkan1"
missing=""
for package in $packages; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $package"
  fi
done
if [ -n "$missing" ]; then
  sudo_command=""
  if [ "$(id -u)" -ne 0 ]; then sudo_command="sudo"; fi
  $sudo_command apt-get update
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo_command apt-get install -y --no-install-recommends $missing
fi
echo "webgpu CI dependencies present: $packages"
