"""Every command against truncated, empty, wrong-kind, non-finite, oversized and unwritable inputs.

Each case must end with exit code 2 and one line per problem on stderr, ``PROG: error: ...``,
naming the file or field; never a traceback, never a silent result. (Crash safety of checkpoints
and recordings under kills is tested in tests/mcnn/train/test_checkpoint.py and
tests/acquire/test_recorder.py.)
"""

from __future__ import annotations

import json
import resource
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from apps import acquire_pairs, bench, export, predict, train
from mcnn.models import MCNN, ModelConfig
from mcnn.weights import MODEL_CONFIG_KEY, save_model

PROGS = {train: "mcnn-train", predict: "mcnn-predict", export: "mcnn-export",
         acquire_pairs: "acquire-pairs", bench: "mcnn-bench"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    save_model(MCNN(ModelConfig(depth=2, base_width=4, max_width=8, branches=1)),
               d / "model.safetensors")
    (d / "empty.yaml").write_text("")
    (d / "garbage.yaml").write_bytes(b"\x00\xff\x10 not: [yaml")
    (d / "config.txt").write_text("model: {}\n")
    (d / "folder.yaml").mkdir()
    base = {"name": "r", "out_dir": str(d / "runs"),
            "model": {"depth": 2, "base_width": 4, "max_width": 8, "branches": 1},
            "data": {"kind": "simulated", "simulator": {"name": "laplacian"}, "size": 16,
                     "examples_per_epoch": 4, "val_examples": 2},
            "train": {"steps": 1, "batch_size": 2, "tensorboard": False, "device": "cpu"}}
    (d / "ok.json").write_text(json.dumps(base))
    folder_data = {"kind": "folder", "inputs": "/nonexistent/in", "targets": "/nonexistent/out"}
    (d / "folder_data.json").write_text(json.dumps(base | {"data": folder_data}))
    (d / "inf.yaml").write_text("loss: {ssim_weight: .inf}\ndata: {kind: simulated, "
                                "simulator: {name: laplacian}}\n")
    (d / "nan.yaml").write_text("optim: {lr: .nan}\ndata: {kind: simulated, "
                                "simulator: {name: laplacian}}\n")
    (d / "a_file").write_text("")
    (d / "empty.png").write_bytes(b"")
    (d / "truncated.tif").write_bytes(b"II*\x00\x08\x00\x00\x00\x05\x00")
    (d / "notes.txt").write_text("not an image")
    nan = np.zeros((8, 8), np.float32)
    nan[1, 1] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "ok.npy", np.zeros((8, 8), np.float32))
    np.save(d / "int64.npy", np.zeros((8, 8), np.int64))
    np.save(d / "complex.npy", np.zeros((8, 8), np.complex64))
    np.save(d / "five_d.npy", np.zeros((1, 1, 1, 8, 8), np.float32))
    (d / "huge.png").write_bytes(_png_header(20000, 20000))
    (d / "huge.safetensors").write_bytes(_tiny_file_declaring_a_huge_network())
    (d / "bad_meta.safetensors").write_bytes(_safetensors({MODEL_CONFIG_KEY: "{not json"}))
    (d / "no_meta.safetensors").write_bytes(_safetensors({}))
    wrong = MCNN(ModelConfig(depth=2, base_width=6, max_width=8, branches=1)).state_dict()
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in wrong.items()}, str(d / "wrong_shapes.safetensors"),
              {MODEL_CONFIG_KEY: ModelConfig(depth=2, base_width=4, max_width=8,
                                             branches=1).model_dump_json()})
    (d / "notrec").mkdir()
    return {p.name: p for p in d.iterdir()} | {"dir": d}


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk that declare ``width x height``, and no pixels."""
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def _safetensors(metadata: dict[str, str], tensors: dict[str, list[int]] | None = None) -> bytes:
    """A hand-made safetensors file: float32 zeros of the given shapes, and ``metadata``."""
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, shape in (tensors or {"w": [1]}).items():
        n = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\x00" * offset


def _tiny_file_declaring_a_huge_network() -> bytes:
    cfg = ModelConfig(in_channels=64, depth=10, base_width=1024, max_width=4096, branches=10)
    return _safetensors({MODEL_CONFIG_KEY: cfg.model_dump_json()}, {"stem.0.weight": [1]})


def _check(capsys, module, argv: list[str], *fragments: str, lines: int | None = 1) -> None:
    try:
        rc = module.main(argv)
    except SystemExit as exc:  # argparse's own exit for a malformed command line
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    prog = PROGS[module]
    assert rc == 2, (argv, rc, err)
    assert err and all(line.startswith(f"{prog}: error: ") for line in err), err
    assert lines is None or len(err) == lines, err
    text = "\n".join(err)
    for fragment in fragments:
        assert fragment in text, (fragment, err)
    assert "Traceback" not in text


TRAIN_CASES: list[tuple[str, Callable[[dict], list[str]], tuple[str, ...]]] = [
    ("missing file", lambda f: [str(f["dir"] / "nope.yaml")], ("nope.yaml: no such config",)),
    ("a folder", lambda f: [str(f["folder.yaml"])], ("folder.yaml: no such config file",)),
    ("empty file", lambda f: [str(f["empty.yaml"])], ("empty.yaml: expected a mapping",)),
    ("binary garbage", lambda f: [str(f["garbage.yaml"])], ("garbage.yaml: cannot parse YAML",)),
    ("wrong suffix", lambda f: [str(f["config.txt"])], ("config.txt: expected a .yaml",)),
    ("infinite number", lambda f: [str(f["inf.yaml"]), "--print-config"],
     ("loss.ssim_weight: Input should be a finite number",)),
    ("NaN number", lambda f: [str(f["nan.yaml"]), "--print-config"],
     ("optim.lr: Input should be a finite number",)),
    ("name escaping out_dir", lambda f: [str(f["ok.json"]), "--name", "../../x"], ("name:",)),
    ("name is ..", lambda f: [str(f["ok.json"]), "--name", ".."], ("must stay inside out_dir",)),
    ("out_dir is a file", lambda f: [str(f["ok.json"]), "--out-dir", str(f["a_file"])],
     ("a_file",)),
    ("unwritable out_dir", lambda f: [str(f["ok.json"]), "--out-dir", "/proc/mcnn-runs"],
     ("/proc/mcnn-runs",)),
    ("resume without checkpoint", lambda f: [str(f["ok.json"]), "--resume", "--name", "fresh"],
     ("no checkpoint to resume from",)),
    ("bad --set", lambda f: [str(f["ok.json"]), "--set", "train.steps"], ("expected KEY=VALUE",)),
    ("unknown field via --set", lambda f: [str(f["ok.json"]), "--set", "model.depht=3"],
     ("model.depht: unknown field",)),
    ("too many branches", lambda f: [str(f["ok.json"]), "--set", "model.branches=9"],
     ("branches=9",)),
    ("negative batch", lambda f: [str(f["ok.json"]), "--batch-size", "-1"],
     ("train.batch_size",)),
    ("bad device", lambda f: [str(f["ok.json"]), "--device", "gpu"], ("invalid choice: 'gpu'",)),
    ("missing data folder", lambda f: [str(f["folder_data.json"])],
     ("/nonexistent/in: no such folder",)),
]


@pytest.mark.parametrize("case, argv, fragments", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_mcnn_train_refuses_bad_input_in_one_line(files, capsys, case, argv, fragments):
    _check(capsys, train, argv(files), *fragments)


PREDICT_CASES = [
    ("missing checkpoint", lambda f: [str(f["dir"] / "nope.safetensors"), str(f["ok.npy"])],
     ("nope.safetensors: no such checkpoint",)),
    ("garbage checkpoint", lambda f: [str(f["truncated.tif"]), str(f["ok.npy"])],
     ("expected a .safetensors file",)),
    ("checkpoint with invalid metadata", lambda f: [str(f["bad_meta.safetensors"]),
                                                    str(f["ok.npy"])],
     ("bad_meta.safetensors: mcnn_model_config metadata is not a valid model config",)),
    ("checkpoint without metadata", lambda f: [str(f["no_meta.safetensors"]), str(f["ok.npy"])],
     ("no_meta.safetensors: no mcnn_model_config metadata",)),
    ("checkpoint with other shapes", lambda f: [str(f["wrong_shapes.safetensors"]),
                                                str(f["ok.npy"])],
     ("wrong_shapes.safetensors: tensor", "has shape")),
    ("empty image", lambda f: [str(f["model.safetensors"]), str(f["empty.png"])],
     ("empty.png",)),
    ("truncated TIFF", lambda f: [str(f["model.safetensors"]), str(f["truncated.tif"])],
     ("truncated.tif",)),
    ("wrong kind of file", lambda f: [str(f["model.safetensors"]), str(f["notes.txt"])],
     ("notes.txt: unsupported file type",)),
    ("NaN pixel", lambda f: [str(f["model.safetensors"]), str(f["nan.npy"])],
     ("nan.npy: 1 of 64 pixels are NaN or infinite",)),
    ("complex pixels", lambda f: [str(f["model.safetensors"]), str(f["complex.npy"])],
     ("complex.npy",)),
    ("5-D array", lambda f: [str(f["model.safetensors"]), str(f["five_d.npy"])],
     ("five_d.npy",)),
    ("20000x20000 declared in a tiny PNG", lambda f: [str(f["model.safetensors"]),
                                                      str(f["huge.png"])],
     ("huge.png", "pixels")),
    ("missing input", lambda f: [str(f["model.safetensors"]), str(f["dir"] / "gone.npy")],
     ("gone.npy: no such file or folder",)),
    ("-o is a file", lambda f: [str(f["model.safetensors"]), str(f["ok.npy"]), "-o",
                                str(f["a_file"])], ("-o must be a folder",)),
    ("-o unwritable", lambda f: [str(f["model.safetensors"]), str(f["ok.npy"]), "-o",
                                 "/proc/mcnn-out"], ("cannot write predictions here",)),
    ("-o would overwrite the input", lambda f: [str(f["model.safetensors"]), str(f["ok.npy"]),
                                                "-o", str(f["dir"]), "--format", "npy"],
     ("would overwrite an input",)),
    ("batch size 0", lambda f: [str(f["model.safetensors"]), str(f["ok.npy"]), "--batch-size",
                                "0"], ("--batch-size 0",)),
    ("bad tile", lambda f: [str(f["model.safetensors"]), str(f["ok.npy"]), "--tile", "3"],
     ("tile_size=3",)),
]


@pytest.mark.parametrize("case, argv, fragments", PREDICT_CASES,
                         ids=[c[0] for c in PREDICT_CASES])
def test_mcnn_predict_refuses_bad_input_in_one_line(files, capsys, tmp_path, case, argv,
                                                    fragments):
    args = argv(files)
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out")]
    _check(capsys, predict, args, *fragments)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_tiny_file_declaring_a_huge_network_is_refused_before_allocating(files, capsys):
    """100 bytes whose metadata declares a multi-GB network: checked against the header first."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    _check(capsys, predict, [str(files["huge.safetensors"]), str(files["ok.npy"]), "-o",
                             str(files["dir"] / "o")], "huge.safetensors: tensor")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 300, f"peak memory grew by {grown_mib:.0f} MiB"


def test_mcnn_export_refuses_bad_checkpoints_and_outputs(files, capsys, tmp_path):
    _check(capsys, export, [str(files["bad_meta.safetensors"]), "-o", str(tmp_path / "m")],
           "bad_meta.safetensors")
    _check(capsys, export, [str(files["wrong_shapes.safetensors"]), "-o", str(tmp_path / "m")],
           "wrong_shapes.safetensors: tensor")
    _check(capsys, export, [str(files["model.safetensors"]), "-o", "/proc/mcnn-export/m",
                            "--format", "torchscript"], "/proc/mcnn-export")


ACQUIRE_CASES = [
    ("absent camera", ["record", "--camera", "/dev/video97", "--screen", "virtual", "--pairs",
                       "1"], ("/dev/video97",)),
    ("100000x100000 sim camera", ["record", "--camera", "sim:size=100000x100000", "--screen",
                                  "virtual", "--pairs", "1"], ("camera.sim.size_hw",)),
    ("9000x9000 sim camera", ["record", "--camera", "sim:size=9000x9000", "--screen", "virtual",
                              "--pairs", "1"], ("pixels a generated frame may have",)),
    ("unknown sim option", ["record", "--camera", "sim:lag=3", "--screen", "virtual"],
     ("lag",)),
    ("non-finite rate", ["record", "--camera", "sim", "--screen", "virtual", "--rate", "inf"],
     ("rate_hz",)),
    ("bad screen", ["record", "--camera", "sim", "--screen", "region:1,2"], ("region",)),
    ("missing --config", ["record", "--config", "/nonexistent/rec.yaml"], ("rec.yaml",)),
    ("info on a folder that is not a recording", None, ("notrec",)),
    ("calibrate into an unwritable place", ["calibrate", "latency", "--camera", "sim",
                                            "--screen", "virtual", "--out",
                                            "/proc/mcnn-cal/cal.json"], ("/proc/mcnn-cal",)),
]


@pytest.mark.parametrize("case, argv, fragments", ACQUIRE_CASES,
                         ids=[c[0] for c in ACQUIRE_CASES])
def test_acquire_pairs_refuses_bad_input(files, capsys, tmp_path, case, argv, fragments):
    if argv is None:
        argv = ["info", str(files["notrec"])]
    elif argv[0] == "record" and "--config" not in argv:
        argv = argv + ["--out", str(tmp_path / "rec")]
    _check(capsys, acquire_pairs, argv, *fragments, lines=None)
    assert not (tmp_path / "rec").exists() or not any((tmp_path / "rec").rglob("*.tiff"))


def test_mcnn_bench_refuses_bad_settings(files, capsys):
    _check(capsys, bench, ["convergence", str(files["garbage.yaml"])], "cannot parse YAML")
    _check(capsys, bench, ["convergence", "--set", "seeds=[]", "--print-config"], "seeds")
    _check(capsys, bench, ["speed", "--preset", "nope"], "unknown model preset 'nope'")
