#!/usr/bin/env bash
# Cross-builds the Windows agent (x86_64-pc-windows-gnu) on Debian:
#   agent/build-windows.sh            -> target/x86_64-pc-windows-gnu/release/agent.exe
# Installs Debian's mingw-w64 linker and the Rust target when missing
# (apt-get needs root; otherwise it says what to install).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "missing: sudo apt-get install --no-install-recommends $*" >&2
    exit 1
  fi
}

command -v x86_64-w64-mingw32-gcc >/dev/null || apt_install gcc-mingw-w64-x86-64
rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
cargo build -p agent --release --target x86_64-pc-windows-gnu "$@"
