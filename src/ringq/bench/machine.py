"""What the benchmarks ran on: machine, Python, ringq and peer versions.

Printed as the header of ``python -m ringq bench`` and stored in its JSON, so a
figure can always be traced back to the machine and build that produced it.
"""
from __future__ import annotations

import os
import platform
import sys
import sysconfig
from typing import Any, Dict, List, Optional

__all__ = ["cpu_model", "describe_environment", "header_lines"]


def cpu_model() -> Optional[str]:
    """The CPU model named in /proc/cpuinfo (Linux), else what platform reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                # x86 says "model name"; some ARM kernels say "Model" or "Hardware".
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _usable_cores() -> Optional[int]:
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    if affinity is None:
        return None
    try:
        return len(affinity(0))
    except OSError:
        return None


def _gil_enabled() -> Optional[bool]:
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_gil_enabled is not None:
        return bool(is_gil_enabled())
    return None if sysconfig.get_config_var("Py_GIL_DISABLED") else True


def _distribution_version(name: str) -> Optional[str]:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def describe_environment() -> Dict[str, Any]:
    """Machine, interpreter, ringq and peer versions, as a JSON-ready dict."""
    import ringq

    return {
        "machine": {
            "platform": platform.platform(),
            "architecture": platform.machine(),
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "usable_cores": _usable_cores(),
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "build": " ".join(platform.python_build()),
            "compiler": platform.python_compiler(),
            "gil_enabled": _gil_enabled(),
            "switch_interval_s": sys.getswitchinterval(),
        },
        "ringq": {
            "version": ringq.__version__,
            "implementation": ringq.IMPLEMENTATION,
            "module": ringq.Queue.__module__,
        },
        "peers": {
            name: _distribution_version(name) for name in ("janus", "faster-fifo")
        },
    }


def header_lines(environment: Dict[str, Any]) -> List[str]:
    """The human-readable header of the results."""
    machine = environment["machine"]
    python = environment["python"]
    ringq_info = environment["ringq"]
    cores = f"{machine['cpu_count']} cores"
    if machine["usable_cores"] not in (None, machine["cpu_count"]):
        cores += f" ({machine['usable_cores']} usable)"
    gil = {True: "GIL enabled", False: "free-threaded, GIL disabled", None: "GIL unknown"}
    return [
        f"ringq {ringq_info['version']}  (ringq.IMPLEMENTATION = {ringq_info['implementation']!r})",
        f"Python {python['version']} ({python['implementation']}, {gil[python['gil_enabled']]})",
        f"Machine: {machine['platform']}",
        f"CPU: {machine['cpu_model'] or 'unknown model'}, {cores}",
    ]
