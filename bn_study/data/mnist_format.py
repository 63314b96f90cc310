"""MNIST-format data from files: the four IDX files (gzipped or not) that MNIST and Fashion-MNIST ship as,
or the `mnist.npz` that keras.datasets caches. What is given is checked (file sizes against their headers,
shapes, label range, counts) and anything else refused in one line, so `data.path=` can point at a copy a
user already has on a machine without network.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bn_study.config import ConfigError

# The four files, by the names both datasets ship them under (each may end in .gz).
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only type these files use


class BadData(ConfigError):
    """Files that are not MNIST-format data."""


def load(path: Path, key: str = "data.path") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(x_train, y_train, x_test, y_test) as uint8 images (N, 28, 28) and labels (N,), and what was read."""
    path = Path(path)
    if path.is_dir():
        files = {part: _find(path, name, key) for part, name in IDX_FILES.items()}
        arrays = {part: read_idx(file, key) for part, file in files.items()}
        what = f"the four IDX files in {path}"
    elif path.suffix == ".npz" and path.is_file():
        arrays, what = _read_npz(path, key), f"{path}"
    else:
        raise BadData(
            f"{key}={path}: must be a folder holding the four IDX files ({', '.join(IDX_FILES.values())}, "
            "each may be .gz) or Keras's mnist.npz" + ("" if path.exists() else "; no such file or folder")
        )
    _check(arrays, path, key)
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], what


def _find(folder: Path, name: str, key: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise BadData(f"{key}={folder}: lacks {name} (or {name}.gz); it must hold {', '.join(IDX_FILES.values())}")


def read_idx(file: Path, key: str = "data.path") -> np.ndarray:
    """One IDX file of unsigned bytes, checked: magic number, and a size that matches its header exactly."""
    try:
        data = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise BadData(f"{key}: {file} cannot be read ({type(err).__name__}: {err})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UBYTE or not 1 <= data[3] <= 3:
        raise BadData(
            f"{key}: {file} is not an IDX file of unsigned bytes (its first bytes are {data[:4].hex() or 'missing'})"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header]) if len(data) >= header else ()
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(dims) != ndim or len(data) != expected:
        raise BadData(
            f"{key}: {file} holds {len(data):,} bytes, its header says {expected:,} (shape {dims}): truncated or padded"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _read_npz(path: Path, key: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [part for part in IDX_FILES if part not in npz.files]
            if missing:
                raise BadData(
                    f"{key}={path}: lacks {', '.join(missing)}; Keras's mnist.npz holds {', '.join(IDX_FILES)}"
                )
            return {part: npz[part] for part in IDX_FILES}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise BadData(f"{key}={path}: cannot be read as an .npz ({type(err).__name__}: {err})") from None


def _check(arrays: dict[str, np.ndarray], path: Path, key: str) -> None:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise BadData(f"{key}={path}: {split} images have shape {x.shape}, not (N, 28, 28)")
        if not len(x):
            raise BadData(f"{key}={path}: holds no {split} images")
        if y.ndim != 1 or len(y) != len(x):
            raise BadData(f"{key}={path}: {len(x):,} {split} images but labels of shape {y.shape}")
        if (
            not np.issubdtype(x.dtype, np.integer)
            or not np.issubdtype(y.dtype, np.integer)
            or x.min() < 0
            or x.max() > 255
        ):
            raise BadData(
                f"{key}={path}: {split} images must be integers 0..255 and labels integers (found {x.dtype}, {y.dtype})"
            )
        if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
            raise BadData(f"{key}={path}: {split} labels range {y.min()}..{y.max()}, not 0..{N_CLASSES - 1}")
