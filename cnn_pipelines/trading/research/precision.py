"""bf16 mixed precision where the hardware has it, kept only when validation IC holds; fp32 everywhere else.

Detected, not assumed: a GPU of compute capability 8.0 or newer, or a CPU flag for bf16 arithmetic
(AVX512-BF16 or AMX-BF16). On a CPU without them TensorFlow would emulate bf16, slower than fp32.
"""

from __future__ import annotations

from pathlib import Path


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    text = cpuinfo if cpuinfo is not None else (
        Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else "")
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[1].split()) if ":" in line else set()


def gpu_details() -> list[dict]:
    """The GPUs Keras trains on, as {device_name, compute_capability (major, minor)}, asked of its backend:
    TensorFlow (this project's default), or JAX where a GPU machine has no TensorFlow."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return [tf.config.experimental.get_device_details(d) for d in tf.config.list_physical_devices("GPU")]
    if keras.backend.backend() == "jax":
        import jax

        return [{"device_name": d.device_kind,
                 "compute_capability": tuple(int(v) for v in str(getattr(d, "compute_capability", "0.0")).split("."))}
                for d in jax.devices() if d.platform == "gpu"]
    return []


def bf16_support(cpuinfo: str | None = None, gpus: list[dict] | None = None) -> tuple[bool, str]:
    """(bf16 arithmetic available, on what). ``gpus``: device details with compute_capability (``gpu_details``)."""
    if gpus is None:
        gpus = gpu_details()
    for g in gpus:
        cc = g.get("compute_capability")
        if cc and tuple(cc) >= (8, 0):
            return True, f"GPU {g.get('device_name', '?')} (compute capability {cc[0]}.{cc[1]})"
    if gpus:
        return False, "the GPU is older than compute capability 8.0 (no bf16 tensor cores)"
    flags = cpu_flags(cpuinfo)
    have = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if have:
        return True, f"CPU with {', '.join(have)}"
    return False, "this CPU has neither AVX512-BF16 nor AMX-BF16 (bf16 would be emulated, slower than fp32)"


def keep_bf16(fp32_ic: float, fp32_se: float, bf16_ic: float, bf16_se: float) -> bool:
    """bf16 stays when its best validation IC is no worse than fp32's by more than one standard error."""
    se = max(fp32_se, bf16_se)
    return bool(bf16_ic >= fp32_ic - (se if se == se else 0.0))
