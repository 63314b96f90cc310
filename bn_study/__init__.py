"""bn-study: an experiment harness for what Batch Normalization does to training."""

import os

# Keras reads its backend, and TensorFlow its log level, once at import: set them before anything imports either.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bn_study import tensorflow_startup  # noqa: E402

tensorflow_startup.install()

__version__ = "0.1.0"


# The Python API, `bn_study.api` (bn_study.cli.api: run, sweep, collect, load), imported on first use, so that `import
# bn_study` stays as light as the commands' start. Not `bn_study.run(...)`: bn_study.run is the run stage's package.
def __getattr__(name: str):
    if name == "api":
        # on first use only: the API imports Hydra and the run stage
        from bn_study.cli import api

        return api
    raise AttributeError(f"module 'bn_study' has no attribute {name!r}")
