"""The MNIST loader on the committed files: checksums, facts about the data, errors."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from bn_helpers import data

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "data" / "mnist"


def test_committed_files_have_published_md5():
    sums = {}
    for line in (MNIST / "MD5SUMS").read_text().splitlines():
        md5, name = line.split()
        sums[name] = md5
    assert sums == data.MNIST_FILES
    for name, md5 in sums.items():
        assert hashlib.md5((MNIST / name).read_bytes()).hexdigest() == md5


def test_train_and_test_facts():
    x, y = data.load_mnist("train")
    assert x.shape == (60000, 784) and x.dtype == np.float32
    assert 0.0 == x.min() and x.max() == 1.0
    assert y.dtype == np.int64 and y[0] == 5
    assert np.bincount(y).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    xt, yt = data.load_mnist("test", scale=False, flatten=False)
    assert xt.shape == (10000, 28, 28) and xt.dtype == np.uint8 and yt[0] == 7
    assert np.bincount(yt).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_subset_is_deterministic_and_consistent():
    x1, y1 = data.load_mnist("test", n=100, seed=3)
    x2, y2 = data.load_mnist("test", n=100, seed=3)
    x3, _ = data.load_mnist("test", n=100, seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    full_x, full_y = data.load_mnist("test")
    idx = [int(np.flatnonzero((full_x == row).all(axis=1))[0]) for row in x1[:5]]
    np.testing.assert_array_equal(full_y[idx], y1[:5])


def test_returned_arrays_are_independent_copies():
    x, _ = data.load_mnist("test", scale=False)
    x[:] = 0
    x2, _ = data.load_mnist("test", scale=False)
    assert x2.max() == 255


def _copy_data(tmp_path):
    for name in data.MNIST_FILES:
        shutil.copy(MNIST / name, tmp_path / name)
    return tmp_path


def test_missing_file_error_names_file_checksum_and_fix(tmp_path):
    d = _copy_data(tmp_path)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        data.load_mnist("test", data_dir=d)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg
    assert data.MNIST_FILES["t10k-labels-idx1-ubyte.gz"] in msg
    assert "git checkout" in msg


def test_corrupt_file_is_refused_before_parsing(tmp_path):
    d = _copy_data(tmp_path)
    f = d / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(f.read_bytes())
    raw[-100] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(data.DataIntegrityError) as info:
        data.load_mnist("test", data_dir=d)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "expected" in msg
    assert data.MNIST_FILES["t10k-images-idx3-ubyte.gz"] in msg


@pytest.mark.parametrize(
    "kwargs,exc,word",
    [
        ({"split": "val"}, ValueError, "split"),
        ({"n": 0, "seed": 1}, ValueError, "n"),
        ({"n": 10**6, "seed": 1}, ValueError, "n"),
        ({"n": 10}, ValueError, "seed"),
        ({"seed": 3}, ValueError, "seed"),
        ({"n": 2.5, "seed": 1}, TypeError, "n"),
        ({"n": 10, "seed": -1}, ValueError, "seed"),
        ({"n": 10, "seed": True}, TypeError, "seed"),
        ({"scale": "no"}, TypeError, "scale"),
        ({"flatten": 1}, TypeError, "flatten"),
    ],
)
def test_bad_arguments(kwargs, exc, word):
    kwargs = {"split": "test", **kwargs}
    with pytest.raises(exc, match=word):
        data.load_mnist(**kwargs)
