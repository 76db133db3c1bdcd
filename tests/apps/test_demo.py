"""mcnn-demo starts fresh each time without deleting what else is in its folder."""

import json

from apps import demo


def test_demo_runs_twice_into_the_same_folder_and_keeps_other_files(tmp_path, capsys):
    args = ["--steps", "2", "--size", "16", "--out", str(tmp_path), "--device", "cpu"]
    assert demo.main(args) == 0
    run = tmp_path / "demo-laplacian"
    (run / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert demo.main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 2 and len(out["val_mae_per_channel"]) == 1
    assert (run / "notes.txt").read_text() == "mine"
    assert out["val_mae_per_channel"][0] == out["val_mae"]


def test_the_screen_demo_films_through_the_realistic_rig_unless_easy_is_asked(tmp_path):
    from mcnn.config_io import validate
    from mcnn.train.config import TrainConfig

    default = demo.demo_config("screen", 10, 32, tmp_path, "cpu")
    easy = demo.demo_config("screen", 10, 32, tmp_path, "cpu", rig="easy")
    assert default["data"]["simulator"]["transport"] == "realistic"
    assert easy["data"]["simulator"]["transport"] == "easy"
    assert default["name"] != easy["name"]  # the two presets do not overwrite each other's run
    assert "transport" not in demo.demo_config("stem", 10, 32, tmp_path, "cpu")["data"]["simulator"]
    for raw in (default, easy):  # both are valid training configs
        assert validate(TrainConfig, raw, "demo").data.simulator.transport == raw["data"][
            "simulator"]["transport"]


def test_the_screen_demo_runs_on_the_realistic_rig_by_default(tmp_path, capsys):
    assert demo.main(["--problem", "screen", "--steps", "2", "--size", "16", "--out",
                      str(tmp_path), "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["rig"] == "realistic" and out["steps"] == 2
    cfg = json.loads((tmp_path / "demo-screen-realistic" / "config.json").read_text())
    assert cfg["data"]["simulator"]["transport"] == "realistic"
