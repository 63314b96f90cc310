"""The same output on every host. On CPUs with AVX512-VNNI, BF16 or AMX, TensorFlow turns oneDNN on and says so at
import, past TF_CPP_MIN_LOG_LEVEL; those notices must never reach stderr, and whether oneDNN was on (it changes the last
bits of the numbers) is recorded with each run. oneDNN is forced on and off here, so these run alike on any CPU."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bn_study import tensorflow_startup
from bn_study.run import records
from tests.conftest import REPO, cli, refused

FAST = ["data=mnist5k", "trainer.steps=20", "trainer.eval_every=10", "probe.examples=100"]

NOTICES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796426814.565977    2100 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical "
    "results due to floating-point round-off errors from different computation orders. To turn them off, set the environment "
    "variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
)


def test_the_start_up_notices_are_dropped_and_everything_else_kept():
    real = "E0000 00:00:1796426814.6 2100 cuda_dnn.cc:8310] Unable to register cuDNN factory\nTraceback (most recent call last):\n"
    assert tensorflow_startup.kept(NOTICES + real + NOTICES) == real


def test_a_fatal_error_while_tensorflow_is_imported_still_reaches_stderr(tmp_path):
    """The filter outlives a process that TensorFlow aborts (a CPU without the instructions it was built for, say)."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os\n"
        f"os.write(2, {NOTICES.encode()!r})\n"
        "os.write(2, b'F0000 00:00:1.0 1 cpu_feature_guard.cc:1] The TensorFlow library needs AVX\\n')\n"
        "os.abort()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", "import bn_study, tensorflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"},
    )
    assert (
        proc.returncode == -signal.SIGABRT
        and proc.stderr == "F0000 00:00:1.0 1 cpu_feature_guard.cc:1] The TensorFlow library needs AVX\n"
    )


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_a_run_writes_nothing_to_stderr_and_records_whether_onednn_was_on(tmp_path, onednn):
    proc = cli(*FAST, f"hydra.run.dir={tmp_path / 'run'}", env={"TF_ENABLE_ONEDNN_OPTS": onednn})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert records.read_run(tmp_path / "run")["runtime"]["onednn"] is (onednn == "1")


def test_an_error_after_tensorflow_is_imported_is_one_line_with_onednn_on(tmp_path):
    proc = cli(
        *FAST,
        "model._target_=tests.builders.always_after",
        "model.bn=before",
        f"hydra.run.dir={tmp_path / 'run'}",
        env={"TF_ENABLE_ONEDNN_OPTS": "1"},
    )
    assert proc.stderr == refused(proc) + "\n" and "breaks the model contract" in proc.stderr


@pytest.mark.parametrize("run_by", [None, "fig1"])
def test_ctrl_c_while_tensorflow_is_imported_is_one_line_and_none_under_a_study(tmp_path, run_by):
    """The terminal's Ctrl-C reaches the whole process group: the filter (in a session of its own) must not add its own
    traceback. Under a study's runner (BN_STUDY_RUN_BY) the sweep says nothing: the runner says how to resume."""
    from bn_study.cli.commands import RUN_BY

    fake = tmp_path / "tensorflow"
    fake.mkdir()
    started = tmp_path / "importing"
    (fake / "__init__.py").write_text(
        f"import os, time\nos.write(2, {NOTICES.encode()!r})\nopen({str(started)!r}, 'w').close()\ntime.sleep(60)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
        "PYTHONUNBUFFERED": "1",
        **({RUN_BY: run_by} if run_by else {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bn_study", *FAST, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    if run_by:
        assert err == ""
    else:
        assert err.splitlines() == ["bn-study: interrupted: no run was written; rerun the same command to redo it"], err
    assert not (tmp_path / "run").exists()


# A command whose Ctrl-C lands where Python cannot raise it as itself (as in TensorFlow's tracing, where it became
# "AttributeError: 'SymbolicTensor' object has no attribute '_type_spec'"), or halfway through its module's import.
_BROKEN_BY_CTRL_C = """
import os, signal, sys
from bn_study.cli import commands

def command():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        signal.pause()
    except KeyboardInterrupt:
        raise AttributeError("'SymbolicTensor' object has no attribute '_type_spec'")

folder = sys.argv[2]
with open(os.path.join(folder, "halfway.py"), "w") as module:
    module.write("import os, signal\\nos.kill(os.getpid(), signal.SIGINT)\\nsignal.pause()\\n")
sys.path.insert(0, folder)
sys.modules["broken"] = sys.modules["__main__"]
commands._run("prog", "halfway" if sys.argv[1] == "import" else "broken", "command")
"""


@pytest.mark.parametrize(
    "where, line",
    [
        ("command", "prog: interrupted; rerun the same command"),
        ("import", "prog: interrupted before it started; nothing was written"),
    ],
)
def test_a_ctrl_c_is_one_line_and_exit_130_whatever_error_it_turns_into(tmp_path, where, line):
    out = subprocess.run(
        [sys.executable, "-c", _BROKEN_BY_CTRL_C, where, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stderr) == (130, line + "\n")


def test_gpu_memory_grows_as_used_unless_the_user_says_otherwise():
    script = "import os, bn_study; print(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])"
    env = {k: v for k, v in os.environ.items() if k != "TF_FORCE_GPU_ALLOW_GROWTH"}
    assert subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout == "true\n"
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "false"
    assert subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout == "false\n"


def test_a_run_records_its_gpus_model_driver_and_cuda(monkeypatch):
    import tensorflow as tf

    from bn_study.run import provenance

    provenance.gpus.cache_clear()
    assert provenance.gpus() == {"gpus": []} or tf.config.list_physical_devices("GPU")
    fake = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [fake] if kind == "GPU" else [])
    monkeypatch.setattr(
        tf.config.experimental,
        "get_device_details",
        lambda device: {"device_name": "NVIDIA H100 80GB HBM3", "compute_capability": (9, 0)},
    )
    monkeypatch.setattr(tf.sysconfig, "get_build_info", lambda: {"cuda_version": "12.5.1", "cudnn_version": "9"})
    # As TensorFlow does: None until set_memory_growth is called; the allocator then reads the environment.
    growth_set = {}
    monkeypatch.setattr(tf.config.experimental, "get_memory_growth", lambda device: growth_set.get(device))

    def found_now():
        provenance.gpus.cache_clear()
        try:
            return provenance.gpus()
        finally:
            provenance.gpus.cache_clear()

    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # what bn_study's start-up sets
    found = found_now()
    assert found["gpus"] == ["NVIDIA H100 80GB HBM3 (compute 9.0)"]
    assert (found["cuda_built"], found["cudnn_built"], found["gpu_memory_growth"]) == ("12.5.1", "9", [True])
    assert "gpu_driver" in found  # nvidia-smi's answer, None on a machine without it
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")  # a user's choice
    assert found_now()["gpu_memory_growth"] == [False]
    growth_set[fake] = True  # set in Python, which wins over the environment
    assert found_now()["gpu_memory_growth"] == [True]
