"""Simulated pairs: fresh per epoch, reproducible from (seed, epoch, index), worker-independent."""

import pytest
import torch
from pydantic import ValidationError
from torch.utils.data import DataLoader

from mcnn.data.config import SimulatedDataConfig
from mcnn.data.protocol import PairDataset, set_epoch
from mcnn.data.seeds import example_seed
from mcnn.data.simulated import SimulatedPairs, build_simulated_datasets
from mcnn.physics import LaplacianPhaseSimulator, ProceduralContent


def pairs(**kwargs) -> SimulatedPairs:
    args = {"size": (16, 16), "length": 8, "seed": 3} | kwargs
    return SimulatedPairs(LaplacianPhaseSimulator(), ProceduralContent(), **args)


def test_it_is_a_pair_dataset_with_the_simulator_channels() -> None:
    data = pairs()
    assert isinstance(data, PairDataset)
    assert (data.in_channels, data.out_channels, len(data)) == (1, 1, 8)
    x, y = data[0]
    assert x.shape == (1, 16, 16) and y.shape == (1, 16, 16) and x.dtype == torch.float32


def test_item_is_a_function_of_seed_epoch_and_index_only() -> None:
    a, b = pairs(), pairs()
    _ = a[5]  # drawing other items first must not matter
    assert all(torch.equal(u, v) for u, v in zip(a[2], b[2], strict=True))
    assert not torch.equal(a[2][1], a[3][1])
    assert not torch.equal(a[2][1], pairs(seed=4)[2][1])
    first = a[2]
    set_epoch(a, 1)
    assert a.epoch == 1 and not torch.equal(first[1], a[2][1])
    a.set_epoch(0)
    assert torch.equal(first[1], a[2][1])


def test_seed_hash_is_stable_and_distinguishes_streams() -> None:
    assert example_seed(0, "train", 0, 0) == example_seed(0, "train", 0, 0)
    assert example_seed(0, "train", 0, 0) != example_seed(0, "val", 0, 0)
    assert example_seed(0, "train", 1, 0) != example_seed(0, "train", 0, 1)
    assert 0 <= example_seed(2**40, "train", 10**6, 10**6) < 2**63


def test_frozen_set_ignores_set_epoch() -> None:
    val = pairs(stream="val", frozen=True)
    before = val[1][1]
    set_epoch(val, 7)
    assert val.epoch == 0 and torch.equal(before, val[1][1])


def test_dataloader_workers_give_the_same_items_as_direct_access() -> None:
    data = pairs(length=6)
    loader = DataLoader(data, batch_size=2, num_workers=2, persistent_workers=True)
    for epoch in (0, 1):  # persistent workers must see the new epoch
        data.set_epoch(epoch)
        inputs = torch.cat([x for x, _ in loader])
        direct = torch.stack([data[i][0] for i in range(len(data))])
        assert torch.equal(inputs, direct)
    assert not torch.equal(inputs, torch.stack([pairs(length=6)[i][0] for i in range(6)]))


def test_index_out_of_range_raises_index_error() -> None:
    data = pairs(length=3)
    assert torch.equal(data[-1][0], data[2][0])
    with pytest.raises(IndexError):
        data[3]


def test_build_datasets_from_config_gives_fixed_val_and_fresh_train() -> None:
    cfg = SimulatedDataConfig.model_validate(
        {
            "simulator": {"name": "screen_rig", "scale": 2},
            "size": [16, 24],
            "examples_per_epoch": 5,
            "val_examples": 3,
            "seed": 1,
        }
    )
    train, val = build_simulated_datasets(cfg)
    assert (len(train), len(val)) == (5, 3)
    x, y = train[0]
    assert x.shape == (3, 16, 24) and y.shape == (3, 32, 48)
    assert not torch.equal(val[0][1], train[0][1])
    v0 = val[0][1]
    train.set_epoch(1)
    val.set_epoch(1)
    assert torch.equal(val[0][1], v0)


def test_simulated_data_config_defaults_and_validation() -> None:
    cfg = SimulatedDataConfig(simulator={"name": "stem"})
    assert cfg.kind == "simulated" and cfg.size_hw == (128, 128)
    assert cfg.content.kind == "procedural"
    assert (cfg.examples_per_epoch, cfg.val_examples) == (2048, 64)
    assert SimulatedDataConfig.model_validate_json(cfg.model_dump_json()) == cfg
    with pytest.raises(ValidationError, match="8, 4096"):
        SimulatedDataConfig(simulator={"name": "stem"}, size=4)
    with pytest.raises(ValidationError):
        SimulatedDataConfig(simulator={"name": "stem"}, kind="folder")
    with pytest.raises(ValidationError):
        SimulatedDataConfig(simulator={"name": "stem"}, epochs=3)


def test_val_seeds_are_odd_and_every_other_stream_even() -> None:
    for seed in (0, 1, 2**40):
        for epoch in (0, 3):
            val = {example_seed(seed, "val", epoch, i) for i in range(200)}
            train = {example_seed(seed, "train", epoch, i) for i in range(200)}
            assert all(s % 2 == 1 for s in val) and all(s % 2 == 0 for s in train)
            assert not val & train
            assert all(example_seed(seed, "folder", epoch, i) % 2 == 0 for i in range(50))


def test_procedural_validation_uses_seeds_training_never_uses() -> None:
    cfg = SimulatedDataConfig.model_validate(
        {"simulator": {"name": "laplacian"}, "size": 16, "examples_per_epoch": 4,
         "val_examples": 4}
    )
    train, val = build_simulated_datasets(cfg)
    assert val.stream == "val" and train.stream == "train"
    val_targets = [val[i][1] for i in range(len(val))]
    for epoch in range(3):
        train.set_epoch(epoch)
        for i in range(len(train)):
            assert not any(torch.equal(train[i][1], v) for v in val_targets)


def _spy_on_images(content, monkeypatch) -> list[str]:
    """Record the key of every image a content source cuts a view from."""
    used: list[str] = []
    image = content.image

    def spy(index: int):
        used.append(content.keys[index])
        return image(index)

    monkeypatch.setattr(content, "image", spy)
    return used


def test_bundled_validation_views_come_only_from_held_out_images(monkeypatch) -> None:
    names = ["camera", "moon", "coins", "text", "page", "brick"]
    cfg = SimulatedDataConfig.model_validate(
        {"simulator": {"name": "laplacian"}, "size": 16, "examples_per_epoch": 12,
         "val_examples": 6, "content": {"kind": "bundled", "names": names, "val_fraction": 0.3}}
    )
    train, val = build_simulated_datasets(cfg)
    assert not set(train.content.keys) & set(val.content.keys)
    assert sorted(train.content.keys + val.content.keys) == sorted(names)
    assert len(val.content.keys) >= 1
    used_train = _spy_on_images(train.content, monkeypatch)
    used_val = _spy_on_images(val.content, monkeypatch)
    for i in range(len(train)):
        train[i]
    for i in range(len(val)):
        val[i]
    assert used_train and used_val
    assert not set(used_val) & set(used_train)
    assert set(used_val) <= set(val.content.keys)


def test_folder_validation_images_are_held_out_and_stable_when_files_are_added(
    tmp_path, monkeypatch
) -> None:
    import numpy as np
    import tifffile

    from mcnn.physics.images import holdout_split

    def add(name: str, value: int) -> None:
        tifffile.imwrite(tmp_path / name, np.full((20, 20), value, np.uint16))

    for i in range(20):
        add(f"img{i}.tif", 1000 * (i + 1))
    cfg = SimulatedDataConfig.model_validate(
        {"simulator": {"name": "laplacian"}, "size": 16, "examples_per_epoch": 10,
         "val_examples": 5, "content": {"kind": "folder", "path": str(tmp_path)}}
    )
    train, val = build_simulated_datasets(cfg)
    before = set(val.content.keys)
    assert before and not before & set(train.content.keys)
    used_val = _spy_on_images(val.content, monkeypatch)
    for i in range(len(val)):
        val[i]
    assert set(used_val) <= before
    for i in range(20, 40):  # new files never move an old one between the sets
        add(f"img{i}.tif", 7)
    train2, val2 = build_simulated_datasets(cfg)
    old = {f"img{i}.tif" for i in range(20)}
    assert set(val2.content.keys) & old == before
    share = len(val2.content.keys) / 40
    assert 0.05 < share < 0.4  # about val_fraction = 0.2
    assert holdout_split(["a", "b"], 0.01)[1] and holdout_split(["a", "b"], 0.99)[0]


def test_a_folder_of_one_image_cannot_hold_one_out(tmp_path) -> None:
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "only.tif", np.zeros((20, 20), np.uint8))
    cfg = SimulatedDataConfig.model_validate(
        {"simulator": {"name": "laplacian"}, "content": {"kind": "folder", "path": str(tmp_path)}}
    )
    with pytest.raises(ValueError, match=f"image folder {tmp_path}: 1 image.*at least 2"):
        build_simulated_datasets(cfg)
