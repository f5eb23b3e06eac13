"""The data set on disk: where CIFAR-10 lives, what its files' checksums must be, and whether the data stage will be
able to read it, checked without torch so that the workflow can ask before its first job.

A missing data set used to surface only when the ``split`` job ran, after other jobs and a minute into a run (and
never in a dry run). :func:`check_dataset` is the same verdict the data stage would reach about the files (present,
readable, canonical md5 when ``data.verify_checksums`` is on), with the same message, given at parse time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pblf.core.errors import DataError
from pblf.core.files import file_digest

CIFAR10_FOLDER = "cifar-10-batches-py"
#: md5 of every file of the official "CIFAR-10 python version" (the values torchvision checks too).
CIFAR10_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_TRAIN_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")


def fetch_hint(root: Path) -> str:
    """How to get CIFAR-10 into ``root``: every message about a missing data set ends with it."""
    return (
        f"Fetch it on a machine with network access with\n"
        f"    python -c \"import torchvision; torchvision.datasets.CIFAR10('{root}', download=True)\"\n"
        f"and copy {root / CIFAR10_FOLDER} here, or set data.download: true."
    )


def md5_mismatch(path: Path, actual: str, expected: str) -> DataError:
    """The refusal of a CIFAR-10 file that is not the canonical one."""
    return DataError(f"CIFAR-10 file {path} has md5 {actual}, expected {expected}: refusing to unpickle it. Fetch the "
                     "official data set again, or set data.verify_checksums: false for a trusted local copy.")


def check_dataset(data_cfg: dict[str, Any]) -> None:
    """Refuse a data set the data stage could not read: CIFAR-10's folder or one of its files missing or unreadable,
    or, with ``data.verify_checksums``, a file whose md5 is not the canonical one (about a second for all seven).
    The digits ship with scikit-learn; a missing CIFAR-10 folder with ``data.download: true`` is the data stage's to
    fetch. What the files hold is still the data stage's to check: it unpickles them."""
    if data_cfg["dataset"] != "cifar10":
        return
    root = Path(data_cfg["root"])
    folder = root / CIFAR10_FOLDER
    if not folder.is_dir():
        if data_cfg["download"]:
            return
        raise DataError(f"CIFAR-10 not found: {folder} does not exist. {fetch_hint(root)}")
    for name, expected in sorted(CIFAR10_MD5.items()):
        path = folder / name
        if not path.is_file():
            raise DataError(f"CIFAR-10 file {path} is missing. {fetch_hint(root)}")
        try:  # hashing reads every byte; without the check, opening the file says it is readable
            if not data_cfg["verify_checksums"]:
                path.open("rb").close()
                continue
            actual = file_digest(path, "md5")
        except OSError as err:
            raise DataError(f"CIFAR-10 file {path} cannot be read: {err.strerror or err}") from None
        if actual != expected:
            raise md5_mismatch(path, actual, expected)
