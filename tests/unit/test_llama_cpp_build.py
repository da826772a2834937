"""The installed llama.cpp runs on any x86-64 CPU with AVX2: setup.sh compiles it with
GGML_NATIVE=OFF. A native build carries the building CPU's extensions and dies with "Illegal
instruction" elsewhere; one did, on a VM that lists AMX without granting it (tileloadd in
libggml-cpu)."""

from __future__ import annotations

import platform
import re

import llama_cpp
import pytest

# Instruction sets the build may use: x86-64-v3, which every x86 server CPU of the last decade has.
PORTABLE = {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}
CPU_EXTENSION = re.compile(r"^(SSE|SSSE|AVX|AMX|F16C|FMA|BMI)")


def _compiled_cpu_features() -> set[str]:
    """The CPU backend's compile-time features, as llama.cpp reports the ones switched on."""
    info = llama_cpp.llama_print_system_info().decode()
    return {name.strip() for name, value in re.findall(r"(\w+) = (\d)", info) if value == "1"}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the AVX2 baseline is x86-64's")
def test_the_installed_llama_cpp_uses_no_cpu_extension_beyond_avx2():
    extensions = {f for f in _compiled_cpu_features() if CPU_EXTENSION.match(f)}
    assert extensions, "llama.cpp reported no CPU features: its system info changed shape"
    assert extensions <= PORTABLE, f"built for one CPU: {sorted(extensions - PORTABLE)}"
