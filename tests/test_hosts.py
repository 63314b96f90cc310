"""The same output on every host. On CPUs with AVX512-VNNI, BF16 or AMX, TensorFlow turns oneDNN on and says so at
import, past TF_CPP_MIN_LOG_LEVEL; those notices must never reach stderr, and whether oneDNN was on (it changes the last
bits of the numbers) is recorded with each run. oneDNN is forced on and off here, so these run alike on any CPU."""

import os
import signal
import subprocess
import sys

import pytest

from bn_study import records, tensorflow_startup
from tests.conftest import REPO, cli, refused

FAST = ["data=mnist5k", "trainer.steps=20", "trainer.eval_every=10", "probe.examples=100"]

NOTICES = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
           "I0000 00:00:1796426814.565977    2100 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical "
           "results due to floating-point round-off errors from different computation orders. To turn them off, set the environment "
           "variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")


def test_the_start_up_notices_are_dropped_and_everything_else_kept():
    real = "E0000 00:00:1796426814.6 2100 cuda_dnn.cc:8310] Unable to register cuDNN factory\nTraceback (most recent call last):\n"
    assert tensorflow_startup.kept(NOTICES + real + NOTICES) == real


def test_a_fatal_error_while_tensorflow_is_imported_still_reaches_stderr(tmp_path):
    """The filter outlives a process that TensorFlow aborts (a CPU without the instructions it was built for, say)."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text("import os\n"
                                      f"os.write(2, {NOTICES.encode()!r})\n"
                                      "os.write(2, b'F0000 00:00:1.0 1 cpu_feature_guard.cc:1] The TensorFlow library needs AVX\\n')\n"
                                      "os.abort()\n")
    proc = subprocess.run([sys.executable, "-c", "import bn_study, tensorflow"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    assert proc.returncode == -signal.SIGABRT and proc.stderr == "F0000 00:00:1.0 1 cpu_feature_guard.cc:1] The TensorFlow library needs AVX\n"


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_a_run_writes_nothing_to_stderr_and_records_whether_onednn_was_on(tmp_path, onednn):
    proc = cli(*FAST, f"hydra.run.dir={tmp_path / 'run'}", env={"TF_ENABLE_ONEDNN_OPTS": onednn})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert records.read_run(tmp_path / "run")["runtime"]["onednn"] is (onednn == "1")


def test_an_error_after_tensorflow_is_imported_is_one_line_with_onednn_on(tmp_path):
    proc = cli(*FAST, "model._target_=tests.builders.always_after", "model.bn=before", f"hydra.run.dir={tmp_path / 'run'}",
               env={"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert proc.stderr == refused(proc) + "\n" and "breaks the model contract" in proc.stderr
