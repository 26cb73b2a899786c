"""Build the digit images of the assignment ``train_cnn`` from scikit-learn's ``load_digits``.

Writes two files, committed with the course:

``source/train_cnn/data/digits.h5``
    released to students: ``train/X``, ``train/y``, ``val/X``, ``val/y``;
``source/train_cnn/grading/digits_test.h5``
    instructor-only (the grading folder is never released): ``test/X``, ``test/y``.

Images are ``float32`` in [0, 1] (the 0..16 counts divided by 16), shaped
``(m, 8, 8, 1)``; labels are ``int64``, shaped ``(m,)``. The split is
stratified by class, with a fixed seed. Both files carry the same root
attributes (provenance, licence, sizes, seed, the scikit-learn version) and
no timestamps, so a rebuild with the same scikit-learn gives identical bytes.

Nothing downloads the data at run time. To rebuild it, use an environment
with scikit-learn (the course's own environment does not need it)::

    python3 -m venv .venv-build && .venv-build/bin/pip install numpy h5py scikit-learn==1.9.1
    .venv-build/bin/python source/train_cnn/grading/build_data.py

The digits are public, so the held-out split keeps the grade honest about
generalisation, not secret: a student could train on every public digit, and
the test only measures what the returned parameters do on these 360.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import h5py
import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
RELEASED = HERE.parent / "data" / "digits.h5"
INSTRUCTOR = HERE / "digits_test.h5"

SEED = 0
N_TEST = 360
N_VAL = 237
N_TRAIN = 1200  # N_TRAIN + N_VAL + N_TEST == 1797, every image of load_digits

ATTRIBUTES = {
    "source": (
        "scikit-learn's load_digits: a copy of the test set (optdigits.tes, 1,797 images) of the UCI ML "
        "'Optical Recognition of Handwritten Digits' data set, E. Alpaydin and C. Kaynak, 1998"
    ),
    "licence": (
        "CC BY 4.0 (Creative Commons Attribution 4.0 International), the licence under which the UCI "
        "Machine Learning Repository distributes its data sets; cite: Alpaydin, E. and Kaynak, C. (1998). "
        "Optical Recognition of Handwritten Digits [Dataset]. UCI Machine Learning Repository."
    ),
    "url": "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
    "built_by": "build_digits.py",
    "preprocessing": "pixels (integers 0..16) divided by 16 as float32; images shaped (m, 8, 8, 1); labels int64",
    "split": "stratified by class (sklearn.model_selection.train_test_split): test first, then validation",
}


def split_indices(y: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """Stratified train / validation / test indices into ``y``, each sorted (original order kept)."""
    every = np.arange(y.shape[0])
    rest, test = train_test_split(every, test_size=N_TEST, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=N_VAL, stratify=y[rest], random_state=seed)
    parts = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    assert {k: v.size for k, v in parts.items()} == {"train": N_TRAIN, "val": N_VAL, "test": N_TEST}
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), every)
    return parts


def load() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as float32 (m, 8, 8, 1) in [0, 1], and their int64 labels."""
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    assert X.shape == (N_TRAIN + N_VAL + N_TEST, 8, 8, 1) and float(X.min()) == 0.0 and float(X.max()) == 1.0
    return X, y


def _write(path: Path, groups: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", libver="earliest") as f:
        for key, value in ATTRIBUTES.items():
            f.attrs[key] = value
        f.attrs["sklearn_version"] = sklearn.__version__
        f.attrs["seed"] = np.int64(SEED)
        f.attrs["n_train"] = np.int64(N_TRAIN)
        f.attrs["n_val"] = np.int64(N_VAL)
        f.attrs["n_test"] = np.int64(N_TEST)
        for name, (X, y) in groups.items():
            group = f.create_group(name)
            # Plain contiguous datasets: no compression, no chunking, no creation times.
            group.create_dataset("X", data=X, track_times=False)
            group.create_dataset("y", data=y, track_times=False)


def build(seed: int = SEED) -> dict[Path, str]:
    """Write both files; return each path's SHA-256."""
    if seed != SEED:
        raise ValueError("the seed is part of the course: change SEED, not the argument")
    X, y = load()
    parts = split_indices(y, seed)
    _write(RELEASED, {name: (X[parts[name]], y[parts[name]]) for name in ("train", "val")})
    _write(INSTRUCTOR, {"test": (X[parts["test"]], y[parts["test"]])})
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (RELEASED, INSTRUCTOR)}


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    for path, digest in build().items():
        print(f"{path}: {path.stat().st_size} bytes, sha256 {digest}")
    print(f"scikit-learn {sklearn.__version__}, seed {SEED}, train/val/test {N_TRAIN}/{N_VAL}/{N_TEST}")


if __name__ == "__main__":
    main()
