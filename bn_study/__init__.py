"""bn-study: an experiment harness for what Batch Normalization does to training."""

import os

# Keras reads its backend, and TensorFlow its log level, once at import: set them before anything imports either.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bn_study import tensorflow_startup  # noqa: E402

tensorflow_startup.install()

__version__ = "0.1.0"
