"""The precision a trained network computes in on this machine: mixed-precision networks run as trained
where the hardware has that precision natively, else in float32 with the same weights."""

from __future__ import annotations

import os


def has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _float32_config(value):
    """A Keras config with every mixed-precision dtype policy (a ``DTypePolicy`` entry, or a ``dtype``
    given by name) replaced by float32; layer names and everything else stay."""
    if isinstance(value, dict):
        policy = str(value.get("config", {}).get("name", "")) if value.get("class_name") == "DTypePolicy" else ""
        if policy.startswith("mixed_"):
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {key: ("float32" if key == "dtype" and isinstance(inner, str) and inner.startswith("mixed_")
                      else _float32_config(inner)) for key, inner in value.items()}
    if isinstance(value, list):
        return [_float32_config(inner) for inner in value]
    return value


def float32_network(network):
    """``network`` itself when it computes in float32, else a copy whose layers all compute in float32
    with the same weights (mixed-precision variables are float32 already)."""
    config = network.get_config()
    converted = _float32_config(config)
    if converted == config:
        return network
    import agegender_tf.models  # noqa: F401  (registers the custom layers)

    copy = network.__class__.from_config(converted)
    copy.set_weights(network.get_weights())
    return copy


def nested_layers(network):
    """``network`` and every layer in it, models nested in it included."""
    stack = [network]
    while stack:
        layer = stack.pop()
        yield layer
        stack.extend(getattr(layer, "layers", None) or [])


def compute_dtype(network) -> str:
    """The narrowest dtype ``network``'s layers compute in: "bfloat16", "float16" or "float32"."""
    seen = {str(getattr(layer, "compute_dtype", "float32")) for layer in nested_layers(network)}
    return next((dtype for dtype in ("bfloat16", "float16") if dtype in seen), "float32")


def native_bfloat16() -> bool:
    """Whether this machine computes bfloat16 natively: a GPU of compute capability 8.0 or more, or,
    without a GPU, a CPU with AVX-512 BF16 or AMX (Linux) that ``ONEDNN_MAX_CPU_ISA`` does not rule out.
    Elsewhere bfloat16 is slower than float32 (1.6x on AVX-512 without BF16, measured on the bundled
    model) or fails (with AVX2 alone oneDNN has no bfloat16 convolution)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        return tuple(capability) >= (8, 0)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if isa != "ALL" and "BF16" not in isa and "AMX" not in isa:
        return False
    return bool((cpu_flags() or set()) & {"avx512_bf16", "amx_bf16"})


def cpu_flags() -> set[str] | None:
    """This CPU's feature flags (Linux ``/proc/cpuinfo``), else None."""
    try:
        with open("/proc/cpuinfo") as handle:
            return set(next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), []))
    except OSError:
        return None
