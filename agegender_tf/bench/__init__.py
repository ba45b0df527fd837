"""Benchmarks (speed targets are measured here, never in timed tests): ``python -m agegender_tf.bench VERB``.

Verbs: ``pipeline`` (``bench.pipeline``), ``train`` and ``precision`` (``bench.train``), ``predict``,
``faces-memory`` and ``framing`` (``bench.predict``), ``hostile-memory`` (``bench.hostile``), ``detectors``
(``bench.detectors``), ``scale`` (``bench.scale``: memory and speed at N faces). Each prints one JSON object
(``--json``) with the machine it ran on, so a number is never read without its context.
"""

from __future__ import annotations

import json
import os
import platform
import sys

CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_features() -> list[str] | None:
    """The matrix-math CPU flags of ``CPU_FEATURES`` this machine has (Linux ``/proc/cpuinfo``), else None."""
    from agegender_tf.serving.precision import cpu_flags

    flags = cpu_flags()
    return None if flags is None else [name for name in CPU_FEATURES if name in flags]


def machine_load() -> dict:
    """The load and the CPUs this process may use, as a benchmark ran (no TensorFlow import)."""
    return {
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def machine() -> dict:
    import keras
    import tensorflow as tf

    return {
        **machine_load(),
        "cpu_features": cpu_features(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def print_report(report: dict, summary: str, as_json: bool) -> None:
    """One JSON line per report (``--json``), else indented JSON and a one-line summary."""
    print(json.dumps(report) if as_json else json.dumps(report, indent=2) + "\n" + summary, flush=True)


def release_models() -> None:
    """Free the networks of the preset just measured before the next one is built."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
