"""MNIST from the original IDX files in ``data/mnist/``: md5-verified, never downloaded.

    x, y = load_mnist("train")  # (60000, 784) float32 in [0, 1], (60000,) int64
    x, y = load_mnist("test", n=1000, seed=0, flatten=False)  # (1000, 28, 28) subset
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from bn_helpers import _validate as v

__all__ = [
    "MNIST_FILES",
    "DataIntegrityError",
    "write_stable_npz",
    "default_data_dir",
    "load_mnist",
    "verify_file",
]

# name -> md5 of the published .gz (the sums torchvision checks too)
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_RESTORE = (
    "restore it with `git checkout -- data/mnist/{name}` in the course repository "
    "(the file is committed there), or rebuild it with tools/prepare_data.sh"
)


class DataIntegrityError(ValueError):
    """A data file exists but its bytes are not the published ones."""


def default_data_dir() -> Path:
    """``$BN_DATA_DIR`` if set, else ``data/mnist`` of the repo bn_helpers lives in."""
    env = os.environ.get("BN_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data" / "mnist"


def verify_file(path: Path, md5: str) -> bytes:
    """The bytes of `path`; FileNotFoundError or DataIntegrityError unless md5 fits."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST file missing: {path} (expected md5 {md5}); "
            + _RESTORE.format(name=path.name)
        )
    raw = path.read_bytes()
    digest = hashlib.md5(raw).hexdigest()
    if digest != md5:
        raise DataIntegrityError(
            f"MNIST file corrupt: {path} has md5 {digest}, expected {md5}; "
            + _RESTORE.format(name=path.name)
        )
    return raw


@functools.lru_cache(maxsize=4)
def _read_idx(path: Path, md5: str, _stamp: tuple[int, int]) -> np.ndarray:
    """Parse one verified IDX file; cached per (path, size, mtime), so reloads are
    instant."""
    raw = gzip.decompress(verify_file(path, md5))
    magic = int.from_bytes(raw[:4], "big")
    if magic == 2051:  # images: n, rows, cols
        n, rows, cols = (
            int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(3)
        )
        arr = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    elif magic == 2049:  # labels: n
        n = int.from_bytes(raw[4:8], "big")
        arr = np.frombuffer(raw, dtype=np.uint8, offset=8)
        if arr.size != n:
            raise DataIntegrityError(
                f"{path}: header says {n} labels, file holds {arr.size}"
            )
    else:
        raise DataIntegrityError(f"{path}: magic number {magic}, expected 2051 or 2049")
    arr.flags.writeable = False
    return arr


def _load(name: str, data_dir: Path) -> np.ndarray:
    path = data_dir / name
    st = path.stat() if path.exists() else None
    stamp = (st.st_size, st.st_mtime_ns) if st else (-1, -1)
    if st is None:
        verify_file(path, MNIST_FILES[name])  # raises the readable FileNotFoundError
    return _read_idx(path, MNIST_FILES[name], stamp)


def load_mnist(
    split: str = "train",
    *,
    scale: bool = True,
    flatten: bool = True,
    n: int | None = None,
    seed: int | None = None,
    data_dir: str | os.PathLike | None = None,
):
    """Load MNIST images and labels as numpy arrays.

    split: "train" (60,000) or "test" (10,000).
    scale: True -> float32 pixels in [0, 1]; False -> the raw uint8 0..255.
    flatten: True -> images (n, 784); False -> (n, 28, 28).
    n, seed: a deterministic random subset of n examples, chosen by
        ``np.random.default_rng(seed)`` (seed is required with n).
    Returns (images, labels) with labels int64 in 0..9.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    for name, flag in (("scale", scale), ("flatten", flatten)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if seed is not None:
        seed = v.seed("seed", seed)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    img_name, lab_name = _SPLITS[split]
    images = _load(img_name, data_dir)
    labels = _load(lab_name, data_dir)
    if len(images) != len(labels):
        raise DataIntegrityError(
            f"{split}: {len(images)} images but {len(labels)} labels"
        )
    if n is not None:
        n = v.positive_int("n", n)
        if n > len(labels):
            raise ValueError(f"n must be <= {len(labels)} for split {split!r}, got {n}")
        if seed is None:
            raise ValueError(
                "seed is required with n: pass seed=0 (or any int) to choose "
                "which examples form the subset, reproducibly"
            )
        idx = np.random.default_rng(seed).choice(len(labels), size=n, replace=False)
        images, labels = images[idx], labels[idx]
    elif seed is not None:
        raise ValueError("seed only selects a subset: pass n as well, or drop seed")
    x = images.astype(np.float32) / np.float32(255.0) if scale else images.copy()
    if flatten:
        x = x.reshape(len(x), -1)
    return x, labels.astype(np.int64)


def write_stable_npz(path, entries: dict) -> None:
    """Write `entries` ({name: array}) as an .npz whose bytes depend only on the
    numbers: fixed zip timestamps, no pickles. Shipped result files use it, so the
    same run gives the same sha256."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in entries.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                        buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
