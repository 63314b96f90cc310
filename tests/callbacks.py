"""A user's own Keras callback (+callbacks.<name>._target_=tests.callbacks.Recorder)."""

import json

import keras


class Recorder(keras.callbacks.Callback):
    """Writes what it is handed, one JSON line per hook call, to `path`."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _write(self, hook, **fields):
        with open(self.path, "a") as f:
            f.write(json.dumps({"hook": hook, **fields}) + "\n")

    def on_train_begin(self, logs=None):
        self._write("train_begin", lr=float(self.model.optimizer.learning_rate.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        self._write("epoch_end", epoch=epoch, logs=logs)

    def on_train_end(self, logs=None):
        self._write("train_end")
