"""The data stage: the CIFAR-10 reader on a genuine-format fixture, checksums before unpickling, the split, the
thesis normalisations and the on-device batches."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pblf.training import data, dataset
from pblf.core.config import validate
from pblf.core.files import file_digest
from pblf.training.data import (
    CIFAR10_FOLDER,
    THESIS_TEST_MEAN,
    THESIS_TEST_STD,
    THESIS_TRAIN_MEAN,
    THESIS_TRAIN_STD,
    DataError,
    make_split,
    read_cifar10,
    split_indices,
)
from pblf.training.dataset import check_dataset


def cifar_cfg(root: Path, **data_overrides) -> dict:
    return validate({"data": {"dataset": "cifar10", "root": str(root), "verify_checksums": False, **data_overrides}})


def fixture_md5s(folder: Path) -> dict[str, str]:
    return {name: file_digest(folder / name, "md5") for name in data.CIFAR10_MD5}


def test_reader_decodes_channel_planar_rows(cifar_root):
    raw = read_cifar10(cifar_root, verify_checksums=False)
    assert raw.train.images.shape == (100, 3, 32, 32) and raw.train.images.dtype == torch.uint8
    assert raw.test.images.shape == (20, 3, 32, 32)
    assert raw.num_classes == 10
    with (cifar_root / CIFAR10_FOLDER / "data_batch_1").open("rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    row = batch[b"data"][3]
    image = raw.train.images[3].numpy()
    assert np.array_equal(image[0].ravel(), row[:1024])  # red plane first
    assert np.array_equal(image[2].ravel(), row[2048:])  # blue plane last
    assert raw.train.labels[3] == batch[b"labels"][3]


def test_canonical_checksums_refuse_a_fixture(cifar_root):
    with pytest.raises(DataError, match="refusing to unpickle"):
        read_cifar10(cifar_root, verify_checksums=True)


def test_tampered_file_is_refused_before_unpickling(cifar_root, tmp_path, monkeypatch):
    folder = cifar_root / CIFAR10_FOLDER
    monkeypatch.setattr(data, "CIFAR10_MD5", fixture_md5s(folder))
    read_cifar10(cifar_root, verify_checksums=True)  # the untouched fixture passes

    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "data_batch_2").write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(DataError, match="data_batch_2 has md5"):
        read_cifar10(cifar_root, verify_checksums=True)
    assert not marker.exists(), "the tampered pickle was opened before its checksum was checked"


def test_missing_folder_names_path_and_command(tmp_path):
    with pytest.raises(DataError) as info:
        read_cifar10(tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / CIFAR10_FOLDER) in message
    assert "torchvision.datasets.CIFAR10(" in message and "download=True" in message


def test_missing_batch_file_is_named(cifar_root):
    (cifar_root / CIFAR10_FOLDER / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4 is missing"):
        read_cifar10(cifar_root, verify_checksums=False)


def test_the_check_before_the_first_job_gives_the_data_stages_verdict_on_the_files(cifar_root, tmp_path, monkeypatch):
    """The workflow calls check_dataset at parse time (dry runs included): presence, readability and the md5s, with
    the messages the data stage itself would give, without torch and without unpickling anything."""
    folder = cifar_root / CIFAR10_FOLDER
    check_dataset(cifar_cfg(cifar_root)["data"])  # present and readable, checksums off
    with pytest.raises(DataError, match="batches.meta has md5 .* refusing to unpickle"):
        check_dataset(cifar_cfg(cifar_root, verify_checksums=True)["data"])  # the fixture is not the canonical set
    monkeypatch.setattr(dataset, "CIFAR10_MD5", fixture_md5s(folder))
    check_dataset(cifar_cfg(cifar_root, verify_checksums=True)["data"])
    with pytest.raises(DataError, match=r"(?s)CIFAR-10 not found: .*nowhere.*torchvision.datasets.CIFAR10"):
        check_dataset(cifar_cfg(tmp_path / "nowhere")["data"])
    check_dataset(cifar_cfg(tmp_path / "nowhere", download=True)["data"])  # the data stage will fetch it
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4 is missing"):
        check_dataset(cifar_cfg(cifar_root)["data"])
    check_dataset(validate({"data": {"dataset": "digits", "root": str(tmp_path / "nowhere")}})["data"])


def test_split_sizes_for_cifar10_are_45000_5000():
    train, val = split_indices(50_000, 0.1, seed=0)
    assert (len(train), len(val)) == (45_000, 5_000)
    assert not set(train) & set(val)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(50_000))


def test_split_depends_on_seed_only():
    a, b = split_indices(1000, 0.1, 7), split_indices(1000, 0.1, 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(split_indices(1000, 0.1, 8)[1], a[1])


def test_split_is_identical_in_another_process(tmp_path):
    code = "from pblf.training.data import split_indices; print(split_indices(50000, 0.1, 3)[1][:50].tolist())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(other) == split_indices(50_000, 0.1, 3)[1][:50].tolist()


def test_split_record_has_the_thesis_constants(cifar_root):
    cfg = cifar_cfg(cifar_root)
    record = make_split(cfg["data"], cfg["seed"])
    norm = record["normalisation"]
    assert norm["train"] == norm["validation"] == {"mean": list(THESIS_TRAIN_MEAN), "std": list(THESIS_TRAIN_STD)}
    assert norm["test"] == {"mean": list(THESIS_TEST_MEAN), "std": list(THESIS_TEST_STD)}
    assert record["augmentation"] == {
        "train": {"crop_padding": 4, "hflip": True}, "validation": None, "test": None,
    }
    assert record["sizes"] == {"train": 90, "validation": 10, "test": 20}
    consistent = make_split(cifar_cfg(cifar_root, normalisation="consistent")["data"], 0)["normalisation"]
    assert consistent["test"] == consistent["train"]


def test_split_file_is_byte_identical(cifar_root, tmp_path):
    cfg = cifar_cfg(cifar_root)
    first = data.write_split(make_split(cfg["data"], 0), tmp_path / "a" / "split.json").read_bytes()
    second = data.write_split(make_split(cfg["data"], 0), tmp_path / "b" / "split.json").read_bytes()
    assert first == second


def test_digits_ship_with_scikit_learn_and_record_their_constants():
    cfg = validate({"data": {"dataset": "digits"}})
    record = make_split(cfg["data"], 0)
    assert record["image_shape"] == [1, 8, 8]
    assert record["sizes"] == {"train": 1293, "validation": 144, "test": 360}
    train_mean = record["normalisation"]["train"]["mean"][0]
    assert 0.2 < train_mean < 0.4 and record["normalisation"]["test"] != record["normalisation"]["train"]


def test_augmentation_only_on_train(cifar_root):
    cfg = cifar_cfg(cifar_root)
    record = make_split(cfg["data"], 0)
    splits = data.load_splits(cfg["data"], record, torch.device("cpu"))
    assert splits.train.augment is not None
    assert splits.validation.augment is None and splits.test.augment is None
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    x1, _ = next(splits.validation.batches(10, g1))
    x2, _ = next(splits.validation.batches(10, g2))
    raw = splits.validation.normalise(splits.validation.data.images[:10])
    assert torch.equal(x1, raw) and torch.equal(x2, raw)


def test_batches_are_normalised_with_the_given_constants(cifar_root):
    cfg = cifar_cfg(cifar_root)
    splits = data.load_splits(cfg["data"], make_split(cfg["data"], 0), torch.device("cpu"))
    x, _ = next(splits.test.batches(5))
    images = splits.test.data.images[:5].double() / 255
    mean = torch.tensor(THESIS_TEST_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(THESIS_TEST_STD, dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(x.double(), (images - mean) / std, atol=1e-5)


def test_random_crop_and_flip_match_a_per_image_reference():
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    part = data.DeviceSplit(
        data.ImageSet(images, torch.zeros(6, dtype=torch.int64)),
        data.Normalisation((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        data.Augment(crop_padding=2, hflip=True),
        torch.device("cpu"),
    )
    out = part._augment(images, torch.Generator().manual_seed(1))
    # replay the same random numbers and build each image by hand
    g = torch.Generator().manual_seed(1)
    dy, dx = torch.randint(0, 5, (6,), generator=g), torch.randint(0, 5, (6,), generator=g)
    flip = torch.rand(6, generator=g) < 0.5
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(6):
        ref = padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref)
    assert not torch.equal(out, images)


def test_shuffled_epoch_covers_every_image_once(cifar_root):
    cfg = cifar_cfg(cifar_root)
    splits = data.load_splits(cfg["data"], make_split(cfg["data"], 0), torch.device("cpu"))
    labels = torch.cat([y for _, y in splits.train.batches(32, torch.Generator().manual_seed(0), shuffle=True)])
    assert sorted(labels.tolist()) == sorted(splits.train.data.labels.tolist())
    sizes = [len(y) for _, y in splits.train.batches(32, torch.Generator().manual_seed(0), shuffle=True)]
    assert sizes == [32, 32, 26]


def test_changed_data_set_is_refused_against_the_split(cifar_root):
    cfg = cifar_cfg(cifar_root)
    record = make_split(cfg["data"], 0)
    record["checksums"]["test_batch"] = "0" * 32
    with pytest.raises(DataError, match="differs from the one the split was made from"):
        data.load_splits(cfg["data"], record, torch.device("cpu"))


def _split_with_arrays(cfg: dict, folder: Path) -> dict:
    raw = data.read_dataset(cfg["data"])
    record = make_split(cfg["data"], 0, raw)
    record["arrays"] = data.write_arrays(raw, folder)
    return record


def test_training_jobs_read_the_arrays_not_the_data_set(cifar_root, tmp_path):
    cfg = cifar_cfg(cifar_root)
    from_data_set = data.load_splits(cfg["data"], make_split(cfg["data"], 0), torch.device("cpu"))
    record = _split_with_arrays(cfg, tmp_path)
    assert sorted(record["arrays"]) == sorted(data.ARRAYS)
    (cifar_root / CIFAR10_FOLDER / "data_batch_1").unlink()  # the arrays alone are enough
    from_arrays = data.load_splits(cfg["data"], record, torch.device("cpu"), tmp_path)
    for part in ("train", "validation", "test"):
        assert torch.equal(getattr(from_arrays, part).data.images, getattr(from_data_set, part).data.images)
        assert torch.equal(getattr(from_arrays, part).data.labels, getattr(from_data_set, part).data.labels)


def test_arrays_are_byte_identical(cifar_root, tmp_path):
    cfg = cifar_cfg(cifar_root)
    first, second = _split_with_arrays(cfg, tmp_path / "a"), _split_with_arrays(cfg, tmp_path / "b")
    assert first["arrays"] == second["arrays"]


@pytest.mark.parametrize("damage", ["flip a byte", "remove"])
def test_a_damaged_array_is_refused_by_name(cifar_root, tmp_path, damage):
    cfg = cifar_cfg(cifar_root)
    record = _split_with_arrays(cfg, tmp_path)
    path = tmp_path / record["arrays"]["test_labels"]["file"]
    if damage == "remove":
        path.unlink()
    else:
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 1
        path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"test_labels\.npy is missing or differs from the sha256"):
        data.load_splits(cfg["data"], record, torch.device("cpu"), tmp_path)
