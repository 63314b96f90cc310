"""Where a run was made: package versions, the code's git commit, the CPU and its instruction-set level, whether
oneDNN was on, the threads, the GPUs (model, driver, CUDA and cuDNN), op determinism and TF32, and the command line (run.json's `versions`,
`runtime` and `command`)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bn_study import tensorflow_startup

_PACKAGES = (
    "bn-study",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "hydra-core",
    "omegaconf",
    "scikit-learn",
    "mlxtend",
)


def versions() -> dict:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@functools.lru_cache(maxsize=1)
def _cpu() -> dict:
    """The CPU model and its x86-64 microarchitecture level: XLA picks its instructions by that level, so
    runs are value-for-value identical on one host, and differ in the last bits (within seed variation)
    across hosts of another level."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if flags and model:
                break
    except OSError:
        pass
    levels = [
        ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
        ("x86-64-v3", {"avx2", "bmi2", "fma", "movbe"}),
        ("x86-64-v2", {"sse4_2", "popcnt", "ssse3"}),
    ]
    isa = next((name for name, needs in levels if needs <= flags), "x86-64" if flags else platform.machine())
    return {"cpu": model, "isa_level": isa, "cpu_count": os.cpu_count()}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# The keys of provenance() that collect carries into runs.csv.
PROVENANCE = ("git_commit", "git_dirty", "cpu", "isa_level", "onednn", "threads", "claims_hash")
# Set by the study runner for its sweeps: {claim id: hash of its declaration} of the study the runs are for
# (bn_study.claims.canonical), so that every run records the claims as they were declared when it ran.
CLAIMS_ENV = "BN_STUDY_CLAIMS"


def claims() -> dict:
    """The study's claim hashes this run was started under, and one digest of them all (runs.csv's claims_hash);
    None for a run no study runner started."""
    declared = json.loads(os.environ[CLAIMS_ENV]) if os.environ.get(CLAIMS_ENV) else None
    if declared is None:
        return {"claims": None, "claims_hash": None}
    text = json.dumps(declared, sort_keys=True, separators=(",", ":"))
    return {"claims": declared, "claims_hash": hashlib.sha256(text.encode()).hexdigest()[:16]}


def provenance() -> dict:
    """Where a run was made: the code's git commit (and whether the package's files had uncommitted changes), the CPU,
    its instruction-set level and whether TensorFlow's oneDNN kernels were on (both change the last bits of
    the numbers), and the threads TensorFlow was allowed."""
    commit = _git("rev-parse", "HEAD")
    # The package's own files (its configs included), not the whole tree: a study writes its results into the tree, and
    # the next study's runs would otherwise all record a change to the code that made them.
    package = str(Path(__file__).resolve().parents[1])
    dirty = None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no", "--", package))
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        **_cpu(),
        "onednn": tensorflow_startup.onednn(),
        "threads": os.environ.get("TF_NUM_INTRAOP_THREADS", f"all ({os.cpu_count()})"),
        **claims(),
    }


def host() -> str:
    """Where a benchmark ran, in one phrase: the CPU, its x86-64 level and oneDNN, each of which moves its times, and the
    commit measured."""
    info = provenance()
    return (
        f"{info['cpu']} {info['isa_level']}, oneDNN {'on' if info['onednn'] else 'off'}, "
        f"at commit {(info['git_commit'] or 'unknown')[:7]}{' with changes' if info['git_dirty'] else ''}"
    )


@functools.lru_cache(maxsize=1)
def gpus() -> dict:
    """The GPUs TensorFlow sees (model and compute capability), the NVIDIA driver, the CUDA and cuDNN versions this
    TensorFlow was built with, and whether each GPU's memory grows as used; {"gpus": []} without a GPU."""
    # imports TensorFlow: called by a run, which has it loaded already
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    if not devices:
        return {"gpus": []}
    build = tf.sysconfig.get_build_info()
    names = []
    for device in devices:
        details = tf.config.experimental.get_device_details(device)
        capability = ".".join(str(v) for v in details.get("compute_capability", ()))
        names.append(f"{details.get('device_name', device.name)}" + (f" (compute {capability})" if capability else ""))
    return {
        "gpus": names,
        "gpu_driver": _nvidia_driver(),
        "cuda_built": build.get("cuda_version"),
        "cudnn_built": build.get("cudnn_version"),
        "gpu_memory_growth": [_memory_grows(tf.config.experimental.get_memory_growth(d)) for d in devices],
    }


def determinism() -> dict:
    """What trainer.deterministic set for this run: TensorFlow's op determinism, and TF32 (float32 matrix products
    rounded to TF32 on GPUs that have it)."""
    # imports TensorFlow: called by a run, which has it loaded already
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # noqa: PLC2701 (the public API has no getter)

    return {
        "op_determinism": tf_config.is_op_determinism_enabled(),
        "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
    }


def _memory_grows(set_in_python: bool | None) -> bool:
    """Whether a GPU's memory grows as used: TensorFlow's Python setting where something set it, else (None, as
    `tensorflow_startup.install` leaves it) the environment variable TensorFlow's allocator reads."""
    if set_in_python is not None:
        return set_in_python
    return os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH", "").lower() == "true"


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else None


def python_command() -> str:
    return " ".join([Path(sys.executable).name, *sys.argv])
