"""What watches a run besides its CSV files: TensorBoard, MLflow and any Keras callback.

TensorBoard and MLflow get what the curves get, on the same axis: every evaluation (step 0 included), every
probe, and each interval's training means, at the training step they belong to (`log`), under
`<split>/<metric>` (TensorBoard) and `<split>_<metric>` (MLflow). Their store is made before any run starts
(`check`): the runs of a sweep only open it.

The training loop is custom (many steps per compiled call), so a user's Keras callbacks are driven by hand
through a `keras.callbacks.CallbackList`: each evaluation interval is one "epoch" to them, and its `logs` hold the
interval's training loss and accuracy, `val_*` and `test_*` (Keras's naming), and `step`. A callback may stop
the run (`model.stop_training`, as EarlyStopping sets it); per-step hooks are never called, which keeps the
compiled loop as fast as without callbacks.

`check` refuses, before any run starts, a logger whose extra is missing, a tracking URI that cannot be reached
and a callback that cannot be made.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
from pathlib import Path

from omegaconf import OmegaConf

from bn_study.config import ConfigError, RunConfig, flatten_config, identity

log = logging.getLogger(__name__)
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlflow-artifacts"
TENSORBOARD_DIR = "tensorboard"


def mlflow_uri(run: RunConfig) -> str:
    return run.logger.mlflow_uri or f"sqlite:///{(Path(run.paths.results) / MLFLOW_DB).resolve()}"


def _callback_objects(callbacks: dict) -> list:
    # TensorFlow, MLflow (an extra) and Hydra's instantiate only for a run that asks for trackers or callbacks
    from hydra.utils import instantiate

    made = []
    for name, spec in callbacks.items():
        if not isinstance(spec, dict) or "_target_" not in spec:
            raise ConfigError(f"callbacks.{name}: must be {{_target_: pkg.module.Class, ...its arguments}}")
        try:
            made.append(instantiate(OmegaConf.create(spec)))
        except Exception as err:  # an unknown class or a wrong argument: Hydra wraps the cause
            cause = err.__cause__ or err
            raise ConfigError(
                f"callbacks.{name}: cannot make {spec['_target_']}: {str(cause).splitlines()[0]}"
            ) from None
        import keras  # the callbacks' base class: only once a callback is asked for

        if not isinstance(made[-1], keras.callbacks.Callback):
            raise ConfigError(
                f"callbacks.{name}: {spec['_target_']} makes a {type(made[-1]).__name__}, not a keras.callbacks.Callback, "
                "which is all a run drives"
            )
    return made


def check(run: RunConfig) -> None:
    """Everything that would stop the trackers or callbacks, raised as one ConfigError line (once per distinct
    setting: a sweep checks each of its jobs). MLflow's store and the study's experiment in it are made here, once,
    so that no run of a sweep spends its time (or races another) creating them."""
    if run.logger.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "logger.tensorboard=true: TensorBoard is not installed (TensorFlow's summaries need it): pip install 'bn-study[tensorboard]'"
        )
    if run.logger.mlflow or run.callbacks:
        store = [mlflow_uri(run), run.study, _artifacts(run)] if run.logger.mlflow else None
        _check(json.dumps([store, run.callbacks], sort_keys=True, default=str))


def _artifacts(run: RunConfig) -> str | None:
    """Beside the local store, not in ./mlruns of whatever folder the run was started from; a server's own."""
    return None if run.logger.mlflow_uri else (Path(run.paths.results) / MLFLOW_ARTIFACTS).resolve().as_uri()


@functools.lru_cache(maxsize=None)
def _check(key: str) -> None:
    store, callbacks = json.loads(key)
    if store is not None:
        if importlib.util.find_spec("mlflow") is None:
            raise ConfigError("logger.mlflow=true: MLflow is not installed: pip install 'bn-study[mlflow]'")
        _open_mlflow(*store)
    _callback_objects(callbacks)


@contextlib.contextmanager
def _one_quick_try():
    """One quick try, not MLflow's minutes of retries: a sweep should hear at once that the server is down. The
    run itself keeps MLflow's own retries, so the settings are put back."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# What logger.mlflow_uri may be, for the refusal of anything else.
MLFLOW_URIS = "http(s)://host:port (a tracking server) or sqlite:///path/to/mlflow.db (null: <paths.results>/mlflow.db)"


def _open_mlflow(uri: str, study: str, artifacts: str | None) -> None:
    """The store at `uri` (made if it is a new SQLite file) with the study's experiment in it."""
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not os.access(next(p for p in (folder, *folder.parents) if p.exists()), os.W_OK):
            raise ConfigError(f"logger.mlflow_uri={uri}: {folder} cannot be written")
        folder.mkdir(parents=True, exist_ok=True)
    # MLflow, an extra, only for a run that logs to it
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        with _one_quick_try():
            client = MlflowClient(uri)
            if client.get_experiment_by_name(study) is None:
                try:
                    client.create_experiment(study, artifact_location=artifacts)
                except MlflowException:
                    pass  # another sweep made it first
    except Exception as err:
        if uri.startswith(("http://", "https://")):
            raise ConfigError(
                f"logger.mlflow_uri={uri}: cannot reach the tracking server ({type(err).__name__})"
            ) from None
        said = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0].strip()
        raise ConfigError(f"logger.mlflow_uri={uri}: MLflow cannot use it ({said}); use {MLFLOW_URIS}") from None


class Trackers:
    """TensorBoard and MLflow, given every logged number at its step (`log`), and the user's callbacks, driven at
    each evaluation."""

    def __init__(
        self,
        run: RunConfig,
        folder: Path,
        model,
        optimizer,
        epochs: int,
        steps_per_epoch: int,
        mlflow_run_id: str | None = None,
    ):
        """`mlflow_run_id`: the MLflow run of an interrupted run being resumed, which goes on in it."""
        # TensorFlow, MLflow (an extra) and Hydra's instantiate only for a run that asks for trackers or callbacks
        import keras

        callbacks = _callback_objects(run.callbacks)
        self._tensorboard = self._mlflow = None
        if run.logger.tensorboard:
            import tensorflow as tf  # its summary writer: only for a run that logs to TensorBoard

            self._tensorboard = tf.summary.create_file_writer(str(Path(folder) / TENSORBOARD_DIR))
        if run.logger.mlflow:
            # MLflow, an extra, only for a run that logs to it
            import mlflow

            check(run)  # the store and the experiment: made once per process, by the sweep before its runs
            mlflow.set_tracking_uri(mlflow_uri(run))
            mlflow.set_experiment(run.study)
            if mlflow_run_id:
                self._mlflow = mlflow.start_run(run_id=mlflow_run_id)
            else:
                self._mlflow = mlflow.start_run(
                    run_name=Path(folder).name, tags={"bn_study.folder": str(Path(folder).resolve())}
                )
                mlflow.log_params({k: str(v)[:500] for k, v in flatten_config(identity(run)).items()})
        self.model = model
        self.active = bool(callbacks)
        if self.active:
            # What fit() would have set up: callbacks read model.optimizer (the learning rate, the step count).
            model.compile(optimizer=optimizer)
        self._list = keras.callbacks.CallbackList(
            callbacks, model=model, epochs=epochs, steps=steps_per_epoch, verbose=0
        )

    @property
    def mlflow_run_id(self) -> str | None:
        return self._mlflow.info.run_id if self._mlflow is not None else None

    def log(self, step: int, values_by_split: dict[str, dict[str, float]]) -> None:
        """What the curves get at `step` ({split: {metric: value}}: an evaluation, a probe, an interval's training
        means), on the training-step axis."""
        if self._tensorboard is not None:
            import tensorflow as tf  # imported by __init__ for this run already

            with self._tensorboard.as_default():
                for split, values in values_by_split.items():
                    for metric, value in values.items():
                        tf.summary.scalar(f"{split}/{metric}", float(value), step=step)
        if self._mlflow is not None:
            import mlflow  # imported by __init__ for this run already

            flat = {
                f"{split}_{metric}": float(v)
                for split, values in values_by_split.items()
                for metric, v in values.items()
            }
            mlflow.log_metrics(flat, step=step, synchronous=True)

    def begin(self) -> None:
        if self.active:
            self.model.stop_training = False
            self._list.on_train_begin()

    def epoch_begin(self, epoch: int) -> None:
        if self.active:
            self._list.on_epoch_begin(epoch)

    def epoch_end(self, epoch: int, logs: dict) -> bool:
        """Hand the evaluation to the callbacks; True if one of them asks the run to stop."""
        if not self.active:
            return False
        self._list.on_epoch_end(epoch, logs)
        return bool(self.model.stop_training)

    def end(self, status: str, logs: dict | None = None) -> None:
        """Once, and never raising: the run's own files are already closed, and a tracker that fails to end
        (a server gone, a callback's bug) is reported without changing the run's status."""
        try:
            if self.active:
                self.active = False
                self._list.on_train_end(logs or {})
        except Exception as err:
            log.warning("WARNING a callback failed to end: %s: %s", type(err).__name__, err)
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        if self._mlflow is not None:
            import mlflow  # an extra: imported above for this run already

            try:
                mlflow.set_tag("bn_study.status", status)
            except Exception as err:
                log.warning("WARNING MLflow: could not record the status: %s: %s", type(err).__name__, err)
            finally:
                # a diverged network is not a finished run: its numbers end in NaN (the tag says which kind of end)
                mlflow.end_run("FINISHED" if status == "done" else "FAILED")
                self._mlflow = None


def epoch_logs(step: int, train: dict, measured: dict) -> dict:
    """An evaluation as Keras names it: loss/accuracy (training), val_*, test_*, and the step."""
    logs = {"step": step, **train}
    for split, values in measured.items():
        logs.update({f"{split}_{k}": v for k, v in values.items()})
    return logs
