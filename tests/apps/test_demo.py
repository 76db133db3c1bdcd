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
