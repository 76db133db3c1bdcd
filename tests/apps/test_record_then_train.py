"""From a recording to a trained network: acquire-pairs (simulated rig) then mcnn-train on it."""

import json

import yaml

from apps import acquire_pairs, train
from mcnn.data.build import build_datasets
from mcnn.data.config import PairsDataConfig


def test_a_simulated_recording_trains_with_mcnn_train(tmp_path, capsys):
    rc = acquire_pairs.main([
        "record", "--mode", "passive", "--camera", "sim:size=160x90", "--screen", "virtual:320x180",
        "--pairs", "24", "--rate", "30", "--out", str(tmp_path / "rec"), "--name", "r",
    ])
    assert rc == 0
    cfg = {
        "name": "door", "out_dir": str(tmp_path / "runs"),
        "model": {"in_channels": 3, "out_channels": 3, "output_scale": 2, "depth": 2,
                  "base_width": 4, "max_width": 8, "branches": 1},
        "data": {"kind": "pairs", "path": str(tmp_path / "rec" / "r"), "mirror": True,
                 "camera_size": [16, 32], "screen_size": [32, 64], "test_first": 8},
        "train": {"steps": 4, "batch_size": 4, "val_every": 2, "tensorboard": False},
    }
    # sizes are (height, width): the loader must give exactly these shapes, never transposed
    train_set, _ = build_datasets(PairsDataConfig.model_validate(cfg["data"]))
    camera, screen = train_set[0]
    assert camera.shape == (3, 16, 32) and screen.shape == (3, 32, 64)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    assert train.main([str(tmp_path / "train.yaml")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["step"] == 4 and 0 < out["val_mae"] < 1
