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
