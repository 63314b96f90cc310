"""Loading MNIST-format files a user has (data.path), and the fallback when a dataset cannot be had (each dataset's
spec against what loads: tests/keras/test_registered.py)."""

import gzip

import numpy as np
import pytest

from bn_study.config import ConfigError
from bn_study.data import datasets as data_lib
from bn_study.data import mnist_format
from tests.conftest import compose_run


def _write_idx(path, array, gz):
    payload = (
        bytes([0, 0, 0x08, array.ndim])
        + b"".join(n.to_bytes(4, "big") for n in array.shape)
        + array.astype(np.uint8).tobytes()
    )
    path.write_bytes(gzip.compress(payload) if gz else payload)


def _mnist_like(folder, gz=True, n_train=200, n_test=50, seed=0):
    """Small MNIST-format files: 28x28 uint8 images, labels 0..9, every class in both splits."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28)),
        "y_train": np.arange(n_train) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28)),
        "y_test": np.arange(n_test) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for part, name in mnist_format.IDX_FILES.items():
        _write_idx(folder / (name + (".gz" if gz else "")), arrays[part], gz)
    return arrays


@pytest.fixture
def fresh_cache():
    data_lib._load.cache_clear(), data_lib._prepared.cache_clear()
    yield
    data_lib._load.cache_clear(), data_lib._prepared.cache_clear()


@pytest.mark.parametrize("form", ["idx.gz", "idx", "npz"])
def test_data_path_loads_mnist_format_files(tmp_path, form, fresh_cache):
    arrays = _mnist_like(tmp_path / "files", gz=form == "idx.gz")
    path = tmp_path / "files"
    if form == "npz":
        path = tmp_path / "mnist.npz"
        np.savez(path, **{k: v.astype(np.uint8) for k, v in arrays.items()})
    loaded = data_lib.load(compose_run("data=mnist", f"data.path={path}").data)
    assert loaded.name == "mnist" and loaded.source.startswith("data.path: ") and str(path) in loaded.source
    assert (len(loaded.x_train), len(loaded.x_val), len(loaded.x_test)) == (180, 20, 50)
    np.testing.assert_array_equal(loaded.x_test[..., 0], arrays["x_test"].astype(np.float32) / 255)
    np.testing.assert_array_equal(loaded.y_test, arrays["y_test"])


def test_fashion_mnist_loads_from_the_debian_package_before_any_download(tmp_path, monkeypatch, fresh_cache):
    arrays = _mnist_like(tmp_path / "debian")
    monkeypatch.setattr(data_lib, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    loaded = data_lib.load(compose_run("data=fashion_mnist").data)
    assert loaded.source.startswith(
        f"Debian package dataset-fashion-mnist: the four IDX files in {tmp_path / 'debian'}"
    )
    np.testing.assert_array_equal(loaded.y_test, arrays["y_test"])


def _truncated(folder):
    name = folder / (mnist_format.IDX_FILES["x_test"] + ".gz")
    name.write_bytes(gzip.compress(gzip.decompress(name.read_bytes())[:-5]))


def _bad_magic(folder):
    (folder / (mnist_format.IDX_FILES["y_train"] + ".gz")).write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + bytes(8)))


def _label_ten(folder):
    _write_idx(folder / (mnist_format.IDX_FILES["y_test"] + ".gz"), np.full(50, 10), gz=True)


def _label_count(folder):
    _write_idx(folder / (mnist_format.IDX_FILES["y_test"] + ".gz"), np.zeros(49), gz=True)


def _missing(folder):
    (folder / (mnist_format.IDX_FILES["y_train"] + ".gz")).unlink()


def _wrong_size(folder):
    _write_idx(folder / (mnist_format.IDX_FILES["x_train"] + ".gz"), np.zeros((200, 32, 32)), gz=True)


def _no_images(folder):
    _write_idx(folder / (mnist_format.IDX_FILES["x_test"] + ".gz"), np.zeros((0, 28, 28)), gz=True)
    _write_idx(folder / (mnist_format.IDX_FILES["y_test"] + ".gz"), np.zeros(0), gz=True)


def _bad_deflate(folder):
    name = folder / (mnist_format.IDX_FILES["x_train"] + ".gz")
    data = bytearray(name.read_bytes())
    data[10] = 0xFF  # the gzip header (10 bytes) is whole; its first deflate block has the reserved type 11
    name.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "spoil, message",
    [
        (_no_images, "holds no test images"),
        (_bad_deflate, "train-images-idx3-ubyte.gz cannot be read (error: "),
        (
            _truncated,
            "t10k-images-idx3-ubyte.gz holds 39,211 bytes, its header says 39,216 (shape (50, 28, 28)): truncated or padded",
        ),
        (_bad_magic, "train-labels-idx1-ubyte.gz is not an IDX file of unsigned bytes (its first bytes are 00000d01)"),
        (_label_ten, "test labels range 10..10, not 0..9"),
        (_label_count, "50 test images but labels of shape (49,)"),
        (_missing, "lacks train-labels-idx1-ubyte (or train-labels-idx1-ubyte.gz)"),
        (_wrong_size, "train images have shape (200, 32, 32), not (N, 28, 28)"),
    ],
)
def test_files_that_are_not_mnist_format_are_refused_in_one_line(tmp_path, spoil, message, fresh_cache):
    _mnist_like(tmp_path / "files")
    spoil(tmp_path / "files")
    with pytest.raises(ConfigError) as err:
        data_lib.load(compose_run("data=mnist", f"data.path={tmp_path / 'files'}").data)
    assert str(err.value).startswith("data.path") and message in str(err.value) and "\n" not in str(err.value)


def test_fashion_mnist_comes_from_debians_files_when_a_failed_download_left_the_keras_cache_empty(
    tmp_path, monkeypatch
):
    debian = tmp_path / "debian"
    _mnist_like(debian)
    monkeypatch.setattr(data_lib, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "datasets" / "fashion-mnist").mkdir(parents=True)  # what a failed download leaves
    *arrays, source = data_lib._fashion_mnist()
    assert source.startswith("Debian package dataset-fashion-mnist") and len(arrays[0]) == 200


def test_the_evaluation_subset_is_fixed_and_stratified():
    y = np.repeat(np.arange(3), [500, 300, 200])
    rows = data_lib.stratified_subset(y, 101)
    assert len(rows) == len(set(rows)) == 101 and (np.diff(rows) > 0).all()
    assert np.bincount(y[rows]).tolist() == [51, 30, 20]  # 50.5, 30.3, 20.2: the largest remainder gets the odd one
    np.testing.assert_array_equal(rows, data_lib.stratified_subset(y, 101))  # the same examples every time
    assert data_lib.stratified_subset(y, 0) is None and data_lib.stratified_subset(y, 1000) is None  # whole


def test_train_size_trains_on_a_fixed_stratified_subsample_and_leaves_validation_and_test_whole():
    whole = data_lib.load(compose_run("data=mnist5k").data)
    cut = data_lib.load(compose_run("data=mnist5k", "data.train_size=1000").data)
    assert len(cut.x_train) == 1000 and "a stratified 1,000 of it" in cut.source
    assert len(cut.x_val) == len(whole.x_val) and len(cut.x_test) == len(whole.x_test)
    # each class its share of the whole training split, the same images every time
    share = np.bincount(whole.y_train) * 1000 / len(whole.y_train)
    assert np.all(np.abs(np.bincount(cut.y_train) - share) < 1)
    again = data_lib.subsampled(data_lib.load(compose_run("data=mnist5k").data), 1000)
    np.testing.assert_array_equal(again.x_train, cut.x_train)


@pytest.mark.parametrize(
    "size, message",
    [
        ("-1", "data.train_size=-1: must be an integer >= 0 (0: the whole training split)"),
        (
            "5000",
            "data.train_size=5000: must be at most 3,600, the training split of mnist5k after its validation split",
        ),
    ],
)
def test_a_train_size_the_training_split_cannot_give_is_refused_in_one_line(size, message):
    with pytest.raises(ConfigError) as err:
        compose_run("data=mnist5k", f"data.train_size={size}")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_run_at_a_train_size_verifies_against_that_size_and_no_other():
    from bn_study.run import records

    data = {"name": "mnist5k", "n_train": 1000, "n_val": 400, "n_test": 1000}
    records._check_sizes(data, {"val_fraction": 0.1, "train_size": 1000})
    with pytest.raises(records.Unverified, match=r"\(1000, 400, 1000\) are not mnist5k's \(3600, 400, 1000\)"):
        records._check_sizes(data, {"val_fraction": 0.1})
