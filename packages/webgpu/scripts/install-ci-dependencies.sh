#!/bin/sh
# Installs what @self-extend/webgpu's tests need on a fresh Debian 12 machine without a GPU.
# Idempotent; Debian packages only (no other downloads; Playwright never downloads a browser).
#   - Mesa's EGL/GLES drivers: Dawn's OpenGL ES backend on llvmpipe (the default CPU WebGPU device).
#   - chromium: the headless browser test (its SwiftShader provides WebGPU in the page).
#   - libvulkan1: lets Dawn in Node also use Chromium's SwiftShader Vulkan ICD when asked
#     (SELF_EXTEND_WEBGPU_BACKEND=vulkan VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json).
#   - lavapipe (Mesa 25's Vulkan llvmpipe) from bookworm-backports, unpacked privately into
#     packages/webgpu/.cache/lavapipe (the system Mesa is not touched; Debian 12's own lavapipe,
#     Mesa 22, is rejected by Dawn): the one CPU adapter here with shader-f16, used by
#     test/float16.test.ts through its ICD file lvp_icd.json (VK_DRIVER_FILES).
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
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "@self-extend/webgpu's tests need these Debian packages, and this machine has no apt-get:$missing; install their equivalents" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo_command="sudo"
    else
      echo "@self-extend/webgpu's tests need these Debian packages:$missing; run this as root, or install them first: sudo apt-get install -y$missing" >&2
      exit 1
    fi
  fi
  $sudo_command apt-get update
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo_command apt-get install -y --no-install-recommends $missing
fi

# lavapipe with shader-f16, from Debian's bookworm-backports, in a private apt state (no change to
# the system's sources or packages). Its libvulkan_lvp.so runs on the system's libllvm15 and libdrm.
# Whatever version backports carries (25.0.7-2~bpo12+1 when this was written and measured): a
# pinned backports version disappears from the archive when the next one lands.
lavapipe="$(cd "$(dirname "$0")/.." && pwd)/.cache/lavapipe"
if [ ! -f "$lavapipe/lvp_icd.json" ] || [ ! -f "$lavapipe/libvulkan_lvp.so" ]; then
  rm -rf "$lavapipe"
  mkdir -p "$lavapipe/apt/lists/partial" "$lavapipe/apt/archives/partial" "$lavapipe/apt/cache" "$lavapipe/debs" "$lavapipe/root"
  printf '%s\n' "deb http://deb.debian.org/debian bookworm-backports main" >"$lavapipe/apt/sources.list"
  set -- -o "Dir::Etc::SourceList=$lavapipe/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o "Dir::State::Lists=$lavapipe/apt/lists" -o "Dir::Cache=$lavapipe/apt/cache" \
    -o "Dir::Cache::Archives=$lavapipe/apt/archives" -o APT::Sandbox::User=root
  apt-get "$@" update
  (cd "$lavapipe/debs" && apt-get "$@" download mesa-vulkan-drivers/bookworm-backports)
  dpkg-deb -x "$lavapipe/debs/"mesa-vulkan-drivers_*.deb "$lavapipe/root"
  # Only lavapipe is kept (the package also holds the radeon, intel, virtio, ... drivers).
  library="$lavapipe/libvulkan_lvp.so"
  mv "$lavapipe/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" "$library"
  printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.4.305"}}\n' "$library" \
    >"$lavapipe/lvp_icd.json"
  dpkg-deb -f "$lavapipe/debs/"mesa-vulkan-drivers_*.deb Version >"$lavapipe/version"
  rm -rf "$lavapipe/apt" "$lavapipe/debs" "$lavapipe/root"
fi
echo "webgpu CI dependencies present: $packages, lavapipe $(cat "$lavapipe/version") in $lavapipe"
