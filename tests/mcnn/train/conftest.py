import pytest

from mcnn.train.config import TrainConfig


@pytest.fixture
def tiny_config(tmp_path):
    def make(**over) -> TrainConfig:
        data = {
            "kind": "simulated",
            "simulator": {"name": "laplacian"},
            "size": 32,
            "examples_per_epoch": 32,
            "val_examples": 8,
        }
        base = {
            "name": "tiny",
            "out_dir": str(tmp_path / "runs"),
            "model": {"depth": 3, "base_width": 8, "max_width": 32, "branches": 2},
            "data": data,
            "train": {"steps": 20, "batch_size": 4, "val_every": 10, "checkpoint_every": 5,
                      "log_every": 5, "sample_images": 2},
        }
        for key, value in over.items():
            node = base
            *path, last = key.split("__")
            for p in path:
                node = node.setdefault(p, {})
            node[last] = value
        return TrainConfig.model_validate(base)

    return make
