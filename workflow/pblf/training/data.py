"""Data sets, the train/validation split, the thesis normalisations and on-device batches.

Section 6.1 of the thesis fixes the data handling: the 50,000 CIFAR-10 training images are split at random into
train and validation (45,000 / 5,000); both are normalised with the CIFAR-10 constants, only train is augmented
(random crop with padding 4, horizontal flip); the 10,000 test images are normalised with *different* (ImageNet)
constants. That mismatch is what the thesis did, so it is the default ("thesis"); ``consistent`` uses the train
constants for the test set too.

A data set is kept as uint8 tensors (all of CIFAR-10 is 184 MB) so that it can live on the GPU, and batches are
normalised and augmented there, whole batches at a time; there is no DataLoader and no PIL.

The CIFAR-10 batch files are pickles, and unpickling can run code. Two guards: each file's md5 is checked against the
canonical value before it is opened (unless ``data.verify_checksums: false``, for a re-encoded copy), and every
file is read, checked or not, with :class:`BatchUnpickler`, which rebuilds only what a batch holds (dicts, lists,
bytes, str, numbers and numpy arrays) and refuses any other global, so no pickle can call a function. The demo's data set is scikit-learn's ``load_digits`` (1,797 real 8x8 images that ship
with scikit-learn), behind the same interface, so a laptop with no network runs every stage.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pblf.core.config import load_config, stage_config
from pblf.core.errors import DataError
from pblf.core.files import file_digest, note_input, read_json, write_bytes, write_text
from pblf.core.layout import SPLIT
from pblf.core.names import ARRAYS
from pblf.core.provenance import Outcome
from pblf.training.dataset import (
    CIFAR10_FOLDER, CIFAR10_MD5, CIFAR10_TRAIN_FILES, fetch_hint, md5_mismatch,
)

log = logging.getLogger(__name__)

#: Section 6.1: train and validation constants (CIFAR-10), and the test constants (ImageNet).
THESIS_TRAIN_MEAN = (0.4914, 0.4822, 0.4465)
THESIS_TRAIN_STD = (0.2023, 0.1994, 0.2010)
THESIS_TEST_MEAN = (0.485, 0.456, 0.406)
THESIS_TEST_STD = (0.229, 0.224, 0.225)


@dataclass
class ImageSet:
    """Images as uint8 (N, C, H, W) and labels as int64 (N,), on any device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray | list[int]) -> "ImageSet":
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return ImageSet(self.images[index], self.labels[index])

    def to(self, device: torch.device | str) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device))


@dataclass
class RawData:
    """A data set as read from disk, before any split: what every reader returns."""

    name: str
    train: ImageSet
    test: ImageSet
    num_classes: int
    #: file name -> md5 of what was read (or, for packaged data, of the arrays), for the split record.
    checksums: dict[str, str]


# ----------------------------------------------------------------------------------------------------------- readers


def _download_cifar10(root: Path) -> None:
    import torchvision

    log.info("downloading CIFAR-10 into %s with torchvision", root)
    try:
        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    except Exception as err:  # noqa: BLE001 - any network failure gets the same advice
        raise DataError(f"could not download CIFAR-10 into {root}: {err}\n{fetch_hint(root)}") from err


class BatchUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR-10 batch files that can build nothing but their contents.

    Dicts, lists, bytes, str and numbers need no global; a numpy array needs exactly the globals below (numpy 1 and
    numpy 2 spell the reconstructor's module differently; a protocol-2 pickle written by Python 3 spells bytes as
    ``_codecs.encode``). Any other global, such as ``os.system`` in a planted ``__reduce__``, is refused before it is
    looked up, so it never runs."""

    ALLOWED: frozenset[tuple[str, str]] = frozenset({
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not part of a CIFAR-10 batch")
        return super().find_class(module, name)


def _unpickle_batch(path: Path, expected_md5: str | None) -> dict[bytes, Any]:
    """Open one batch file, after checking its md5 when ``expected_md5`` is given, with :class:`BatchUnpickler`."""
    if not path.is_file():
        raise DataError(f"CIFAR-10 file {path} is missing. {fetch_hint(path.parent.parent)}")
    if expected_md5 is not None:
        actual = file_digest(path, "md5")
        if actual != expected_md5:
            raise md5_mismatch(path, actual, expected_md5)
    try:
        with path.open("rb") as handle:
            batch = BatchUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataError(f"CIFAR-10 file {path} is not a CIFAR-10 batch: {err}; fetch the data set again") from None
    if not isinstance(batch, dict):
        raise DataError(f"CIFAR-10 file {path} is not a CIFAR-10 batch (it holds a {type(batch).__name__})")
    return batch


def _field(batch: dict[bytes, Any], key: bytes, path: Path) -> Any:
    if key not in batch:
        raise DataError(f"CIFAR-10 file {path} has no {key.decode()!r} entry: it is not a CIFAR-10 batch")
    return batch[key]


def _rows_to_images(rows: np.ndarray) -> np.ndarray:
    """CIFAR rows are 3,072 bytes, channel-planar (1,024 red, 1,024 green, 1,024 blue): (N, 3072) -> (N, 3, 32, 32)."""
    rows = np.asarray(rows, dtype=np.uint8)
    if rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32:
        raise DataError(f"CIFAR-10 batch has rows of shape {rows.shape}, expected (N, 3072)")
    return rows.reshape(-1, 3, 32, 32)


def _read_cifar_split(folder: Path, files: tuple[str, ...], verify: bool) -> tuple[ImageSet, dict[str, str]]:
    images, labels, checksums = [], [], {}
    for name in files:
        path = folder / name
        batch = _unpickle_batch(path, CIFAR10_MD5[name] if verify else None)
        images.append(_rows_to_images(_field(batch, b"data", path)))
        labels.append(np.asarray(_field(batch, b"labels", path), dtype=np.int64))
        checksums[name] = file_digest(path, "md5")
    return ImageSet(torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))), checksums


def read_cifar10(root: str | Path, download: bool = False, verify_checksums: bool = True) -> RawData:
    """CIFAR-10 from the official python-version folder ``root/cifar-10-batches-py``."""
    root = Path(root)
    folder = root / CIFAR10_FOLDER
    if not folder.is_dir():
        if download:
            _download_cifar10(root)
        else:
            raise DataError(f"CIFAR-10 not found: {folder} does not exist. {fetch_hint(root)}")
    if not verify_checksums:
        log.warning("data.verify_checksums is false: CIFAR-10 files in %s are read without an md5 check (with the "
                    "restricted unpickler, which builds nothing but a batch's arrays)", folder)
    meta = _unpickle_batch(folder / "batches.meta", CIFAR10_MD5["batches.meta"] if verify_checksums else None)
    num_classes = len(_field(meta, b"label_names", folder / "batches.meta"))
    train, train_sums = _read_cifar_split(folder, CIFAR10_TRAIN_FILES, verify_checksums)
    test, test_sums = _read_cifar_split(folder, ("test_batch",), verify_checksums)
    checksums = {**train_sums, **test_sums, "batches.meta": file_digest(folder / "batches.meta", "md5")}
    return RawData("cifar10", train, test, num_classes, dict(sorted(checksums.items())))


def read_digits() -> RawData:
    """scikit-learn's digits (1,797 8x8 grey images, values 0..16) as uint8 0..255.

    The data set has no test split of its own; every fifth image (index % 5 == 0) is its test set, a rule that
    belongs to the data set (like CIFAR-10's test_batch) and not to the experiment's seed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    is_test = np.arange(len(labels)) % 5 == 0
    checksums = {
        "images": hashlib.md5(pixels.tobytes()).hexdigest(),
        "labels": hashlib.md5(labels.tobytes()).hexdigest(),
    }
    train = ImageSet(torch.from_numpy(pixels[~is_test]), torch.from_numpy(labels[~is_test]))
    test = ImageSet(torch.from_numpy(pixels[is_test]), torch.from_numpy(labels[is_test]))
    return RawData("digits", train, test, 10, checksums)


#: The data sets the pipeline can read, with the number and shape of their training images (before the split).
DATASETS: tuple[str, ...] = ("cifar10", "digits")
TRAIN_IMAGES: dict[str, int] = {"cifar10": 50_000, "digits": 1_437}
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {"cifar10": (3, 32, 32), "digits": (1, 8, 8)}


def train_size(data_cfg: dict[str, Any]) -> int:
    """The images one epoch trains on, from the config alone (without reading the data set): the data set's
    training images, cut to ``subset``, less the validation split."""
    n = TRAIN_IMAGES[data_cfg["dataset"]]
    if data_cfg.get("subset"):
        n = min(n, data_cfg["subset"])
    return n - int(round(n * data_cfg["val_fraction"]))


def dataset_checksums(name: str, root: str | Path) -> dict[str, str]:
    """The checksums a split records for data set ``name`` (under ``root`` for CIFAR-10), recomputed without
    opening any file as a pickle: the md5 of each CIFAR-10 file, or of scikit-learn's digits arrays."""
    if name == "digits":
        return read_digits().checksums
    folder = Path(root) / CIFAR10_FOLDER
    missing = [n for n in sorted(CIFAR10_MD5) if not (folder / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 files {', '.join(missing)} are not in {folder}")
    return {n: file_digest(folder / n, "md5") for n in sorted(CIFAR10_MD5)}


def read_dataset(data_cfg: dict[str, Any]) -> RawData:
    """The data set that ``data_cfg`` (the config's ``data`` section) names, cut to ``subset`` if set."""
    name = data_cfg["dataset"]
    if name == "cifar10":
        raw = read_cifar10(data_cfg["root"], data_cfg["download"], data_cfg["verify_checksums"])
    elif name == "digits":
        raw = read_digits()
    else:
        raise DataError(f"unknown data set {name!r}; allowed: cifar10, digits")
    subset = data_cfg.get("subset")
    if subset:
        n_train, n_test = min(subset, len(raw.train)), min(max(subset // 5, 10), len(raw.test))
        raw.train = raw.train.subset(np.arange(n_train))
        raw.test = raw.test.subset(np.arange(n_test))
    return raw


# ------------------------------------------------------------------------------------------------- split and stats


@dataclass(frozen=True)
class Normalisation:
    mean: tuple[float, ...]
    std: tuple[float, ...]


def channel_stats(images: torch.Tensor) -> Normalisation:
    """Per-channel mean and std of uint8 images scaled to [0, 1], rounded to 4 decimals like the thesis constants."""
    values = images.double().div(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    mean = tuple(round(float(v), 4) for v in values.mean(dim=1))
    std = tuple(round(float(v), 4) for v in values.std(dim=1))
    return Normalisation(mean, std)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into sorted train and validation indices.

    numpy's PCG64 with a fixed seed gives the same permutation on every platform and process."""
    n_val = int(round(n * val_fraction))
    if not 0 < n_val < n:
        raise DataError(f"data.val_fraction={val_fraction} leaves {n_val} of {n} images for validation")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def normalisations(raw: RawData, train_indices: np.ndarray, mode: str) -> dict[str, Normalisation]:
    """The constants for train/validation and for test under ``mode`` (thesis | consistent).

    CIFAR-10 uses the thesis constants. For other data sets the train/validation constants are measured on the train
    split; under ``thesis`` their test constants are measured on the test set, so that, as in the thesis, the test set
    is normalised with constants that differ from the train ones."""
    if raw.name == "cifar10":
        train = Normalisation(THESIS_TRAIN_MEAN, THESIS_TRAIN_STD)
        thesis_test = Normalisation(THESIS_TEST_MEAN, THESIS_TEST_STD)
    else:
        train = channel_stats(raw.train.images[torch.as_tensor(train_indices)])
        thesis_test = channel_stats(raw.test.images)
    if mode == "thesis":
        return {"train": train, "validation": train, "test": thesis_test}
    if mode == "consistent":
        return {"train": train, "validation": train, "test": train}
    raise DataError(f"unknown data.normalisation {mode!r}; allowed: thesis, consistent")


def make_split(data_cfg: dict[str, Any], seed: int, raw: RawData | None = None) -> dict[str, Any]:
    """The split record written to ``results/data/split.json``: everything training needs to rebuild the data."""
    raw = raw or read_dataset(data_cfg)
    train_idx, val_idx = split_indices(len(raw.train), data_cfg["val_fraction"], seed)
    norms = normalisations(raw, train_idx, data_cfg["normalisation"])
    return {
        "dataset": raw.name,
        "seed": seed,
        "num_classes": raw.num_classes,
        "image_shape": list(raw.train.images.shape[1:]),
        "sizes": {"train": len(train_idx), "validation": len(val_idx), "test": len(raw.test)},
        "checksums": raw.checksums,
        "normalisation": {
            "mode": data_cfg["normalisation"],
            **{part: {"mean": list(n.mean), "std": list(n.std)} for part, n in norms.items()},
        },
        "augmentation": {
            "train": {"crop_padding": data_cfg["augment"]["crop_padding"], "hflip": data_cfg["augment"]["hflip"]},
            "validation": None,
            "test": None,
        },
        "train_indices": train_idx.tolist(),
        "validation_indices": val_idx.tolist(),
    }


def write_split(record: dict[str, Any], path: str | Path) -> Path:
    """Byte-stable JSON: sorted keys, fixed separators, index lists on one line each."""
    return write_text(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n", path)


def read_split(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split record {path} does not exist; run the data stage first (snakemake results/data/split.json)")
    return read_json(path)


def write_arrays(raw: RawData, folder: Path) -> dict[str, dict[str, str]]:
    """Write the data set's images and labels as ``.npy`` files under ``folder/arrays``; their sha256, for the split
    record (each job checks them before it trusts them)."""
    recorded = {}
    for name in ARRAYS:
        part, field_name = name.split("_")
        buffer = io.BytesIO()
        np.save(buffer, getattr(getattr(raw, part), field_name).numpy(), allow_pickle=False)
        data = buffer.getvalue()
        path = write_bytes(data, folder / "arrays" / f"{name}.npy")
        recorded[name] = {"file": str(path.relative_to(folder)), "sha256": hashlib.sha256(data).hexdigest()}
    return recorded


def read_arrays(split: dict[str, Any], folder: Path) -> tuple[ImageSet, ImageSet]:
    """The train and test sets from the arrays a split record names (paths relative to ``folder``, the record's),
    each checked against its recorded sha256 and memory-mapped (copy on write: pages are read as they are used)."""
    loaded = {}
    for name, entry in split["arrays"].items():
        path = folder / entry["file"]
        if not path.is_file() or file_digest(path) != entry["sha256"]:
            raise DataError(f"{path} is missing or differs from the sha256 in its split record; rerun the data stage")
        note_input(path)
        loaded[name] = torch.from_numpy(np.load(path, mmap_mode="c", allow_pickle=False))
    return (ImageSet(loaded["train_images"], loaded["train_labels"]),
            ImageSet(loaded["test_images"], loaded["test_labels"]))


def stage_split(config: list[Path], out: Path) -> Outcome:
    """``pblf split``: read the data set (checksums before unpickling), split it, write ``out/split.json`` and the
    data set as arrays (``out/arrays/*.npy``) for the training jobs."""
    cfg = load_config(config)
    raw = read_dataset(cfg["data"])
    record = make_split(cfg["data"], cfg["seed"], raw)
    record["arrays"] = write_arrays(raw, Path(out))
    path = write_split(record, Path(out) / SPLIT)
    sizes = record["sizes"]
    log.info("%s split (seed %d): %d train / %d validation / %d test, normalisation %s -> %s", record["dataset"],
             cfg["seed"], sizes["train"], sizes["validation"], sizes["test"], record["normalisation"]["mode"], path)
    return Outcome(stage_config(cfg, "data"), {"split_of": record["dataset"]})


# ---------------------------------------------------------------------------------------------- on-device batches


@dataclass(frozen=True)
class Augment:
    """Train-only augmentation: random crop with zero padding, random horizontal flip."""

    crop_padding: int = 4
    hflip: bool = True


class DeviceSplit:
    """One part of the data (train, validation or test) resident on a device, served as normalised batches.

    Images stay uint8 on the device; a batch is cropped and flipped as uint8 (the padding is raw 0, as torchvision's
    RandomCrop pads the PIL image before ToTensor/Normalize), then normalised to float32. The random numbers for
    shuffling and augmentation come from a CPU ``torch.Generator`` so that a seed gives the same batches on any
    device."""

    def __init__(self, images: ImageSet, norm: Normalisation, augment: Augment | None, device: torch.device) -> None:
        self.data = images.to(device)
        shape = (1, len(norm.mean), 1, 1)
        self.mean = torch.tensor(norm.mean, dtype=torch.float32, device=device).view(shape)
        self.std = torch.tensor(norm.std, dtype=torch.float32, device=device).view(shape)
        self.augment = augment
        self.device = device

    def __len__(self) -> int:
        return len(self.data)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float().div_(255.0) - self.mean) / self.std

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        assert self.augment is not None
        n, _, height, width = images.shape
        pad = self.augment.crop_padding
        if pad:
            padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
            dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(self.device)
            dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(self.device)
            rows = (dy[:, None] + torch.arange(height, device=self.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(width, device=self.device))[:, None, None, :]
            batch = torch.arange(n, device=self.device)[:, None, None, None]
            channel = torch.arange(images.shape[1], device=self.device)[None, :, None, None]
            images = padded[batch, channel, rows, cols]
        if self.augment.hflip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(self.device)[:, None, None, None]
            images = torch.where(flip, images.flip(-1), images)
        return images

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised (x, y) batches; shuffled and augmented only when a generator is given and shuffle is set.

        The last partial batch is kept (every image counts once per epoch, as with drop_last=False)."""
        n = len(self.data)
        if shuffle:
            if generator is None:
                raise ValueError("shuffling needs a seeded generator")
            order = torch.randperm(n, generator=generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            images = self.data.images[index]
            if self.augment is not None and generator is not None:
                images = self._augment(images, generator)
            yield self.normalise(images), self.data.labels[index]


@dataclass
class Splits:
    train: DeviceSplit
    validation: DeviceSplit
    test: DeviceSplit
    num_classes: int
    in_channels: int


def load_splits(data_cfg: dict[str, Any], split: dict[str, Any], device: torch.device,
                folder: Path | None = None) -> Splits:
    """Rebuild the three parts from a split record, and put them on ``device``: from the arrays the record names
    (``folder`` is the record's), or, for a record without them, from the data set itself.

    The data set's checksums must equal the ones recorded in the split: training on other data than the split was
    made from would silently break provenance."""
    if "arrays" in split and folder is not None:
        train_set, test_set = read_arrays(split, folder)
    else:
        raw = read_dataset(data_cfg)
        if raw.checksums != split["checksums"]:
            raise DataError(
                f"the data set under {data_cfg.get('root')} differs from the one the split was made from "
                f"(checksums {raw.checksums} != recorded {split['checksums']}); rerun the data stage"
            )
        train_set, test_set = raw.train, raw.test
    norm = split["normalisation"]
    aug = split["augmentation"]["train"]

    def part(name: str) -> Normalisation:
        return Normalisation(tuple(norm[name]["mean"]), tuple(norm[name]["std"]))

    train = train_set.subset(split["train_indices"])
    validation = train_set.subset(split["validation_indices"])
    return Splits(
        train=DeviceSplit(train, part("train"), Augment(aug["crop_padding"], aug["hflip"]), device),
        validation=DeviceSplit(validation, part("validation"), None, device),
        test=DeviceSplit(test_set, part("test"), None, device),
        num_classes=split["num_classes"],
        in_channels=split["image_shape"][0],
    )
