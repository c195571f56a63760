"""Device and precision choice: CUDA when present, else MPS, else CPU; nothing hard-coded."""

from __future__ import annotations

import contextlib
import os

import torch

from infomax.errors import InfomaxError


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda, else mps, else cpu; an explicit name is checked for availability."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InfomaxError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InfomaxError(f"--device {name} asked for, but no CUDA device is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InfomaxError(f"--device {name} asked for, but MPS is not available; use --device cpu")
    return device


def autocast(device: torch.device, precision: str):
    """bf16 autocast for 'bf16' (CPU, CUDA, MPS); a no-op context for 'fp32'."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise InfomaxError(f"precision must be fp32 or bf16, got {precision!r}")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """One line naming the machine, for benchmark output."""
    import os

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu_model()}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}"


def keep_freed_memory(mb: int = 512) -> bool:
    """Ask glibc's malloc to keep up to `mb` MB of freed memory instead of returning it to the OS.

    A CPU training step frees and re-allocates the same activation buffers (a few MB each) every
    step; by default glibc hands the top of its heap back to the kernel and maps it again on the
    next step, a stream of page faults (several thousand per step). Raising the trim threshold
    (M_TRIM_THRESHOLD) and pinning the mmap threshold at its maximum (M_MMAP_THRESHOLD, 32 MB on
    64-bit) keeps the buffers mapped. It only changes when memory goes back to the OS, never what
    is computed. Returns False where it does not apply (not Linux with glibc).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_trim_threshold, mb << 20)) & bool(mallopt(m_mmap_threshold, 32 << 20))
