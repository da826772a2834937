#!/usr/bin/env bash
# Installs what Hearth needs into ./.venv. With --test, also the test tools and Chromium.
#   ./setup.sh          runtime: Python packages (compiles llama.cpp once, ~10 min on 2 cores)
#   ./setup.sh --test   runtime + pytest, Playwright and Debian/Ubuntu's chromium package
set -euo pipefail
cd "$(dirname "$0")"

with_tests=false
[[ "${1:-}" == "--test" ]] && with_tests=true
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1;33m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root for: $*"; return 1
  fi
}

apt_install() {
  # Installs only what is missing, so a warm machine skips apt entirely.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  ((${#missing[@]})) || return 0
  say "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# llama.cpp is compiled for any x86-64 CPU with AVX2 (GGML_NATIVE=OFF), never with -march=native:
# a native build carries the building CPU's instructions (AVX-512, AMX) and dies with "Illegal
# instruction" on another CPU, or on a VM that lists AMX without granting it. pip's own wheel
# cache cannot tell builds apart by their flags, so the wheel is kept in a folder named by the
# version and flags, and the venv records which build it holds (an older one is replaced).
LLAMA_CPP_FLAGS="-DGGML_NATIVE=OFF"
install_llama_cpp() {
  local spec build wheels
  spec=$(grep -E '^llama-cpp-python==' requirements.txt)
  build="$spec $LLAMA_CPP_FLAGS"
  [[ "$(cat .venv/.llama-cpp-build 2>/dev/null)" == "$build" ]] && return 0
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/hearth/wheels/$(printf '%s' "$build" | sha256sum | cut -c1-16)"
  if ! compgen -G "$wheels/llama_cpp_python-*.whl" >/dev/null; then
    say "compiling llama.cpp for any AVX2 CPU ($LLAMA_CPP_FLAGS): about 10 minutes, once per machine"
    CMAKE_ARGS="$LLAMA_CPP_FLAGS" .venv/bin/python -m pip wheel -q --no-deps --no-cache-dir \
      --no-binary llama-cpp-python -w "$wheels" "$spec"
  fi
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
  printf '%s' "$build" > .venv/.llama-cpp-build
}

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || {
  say "Hearth needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)."
  exit 1
}

if command -v apt-get >/dev/null; then
  packages=(build-essential)  # llama-cpp-python compiles llama.cpp with gcc/g++
  # Debian's python3 has the venv module but not ensurepip until python3-venv is installed.
  "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
  $with_tests && packages+=(chromium)
  apt_install "${packages[@]}"
elif $with_tests && [[ ! -x /usr/bin/chromium ]]; then
  say "No apt-get: install Chromium yourself and set HEARTH_CHROMIUM=/path/to/chromium."
fi

[[ -x .venv/bin/python ]] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
.venv/bin/python -m pip install -q --upgrade pip
requirements=requirements.txt
$with_tests && requirements=requirements-dev.txt
install_llama_cpp
say "pip install -r $requirements"
.venv/bin/python -m pip install -q -r "$requirements"
# Hearth itself, editable: `backend` and `ui` import from this checkout wherever you run.
.venv/bin/python -m pip install -q --no-deps -e .
say "ready"
