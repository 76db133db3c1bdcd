"""DistributedDataParallel through torchrun on the CPU (gloo): the multi-GPU code path, for real."""

import json
import os
import socket
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from mcnn.train.config import TrainConfig
    from mcnn.train.trainer import Trainer

    seen = []

    class Recorder(Trainer):
        def training_step(self, x, y):
            seen.append(float(x.sum()))
            return super().training_step(x, y)

    cfg = TrainConfig.model_validate(json.loads(sys.argv[1]))
    t = Recorder(cfg, progress=False)
    t.fit()
    w = torch.cat([p.detach().flatten() for p in t.model.parameters()])
    out = {"rank": t.dist.rank, "world": t.dist.world_size, "checksum": float(w.double().sum()),
           "first": float(w[0]), "batches": seen}
    open(sys.argv[2] + f".{t.dist.rank}.json", "w").write(json.dumps(out))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_training_keeps_replicas_identical_on_disjoint_data(tiny_config, tmp_path):
    cfg = tiny_config(train__steps=6, train__val_every=3, train__device="cpu")
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", "--master_addr=127.0.0.1", str(script),
           cfg.model_dump_json(), str(tmp_path / "result")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "result.0.json").read_text())
    r1 = json.loads((tmp_path / "result.1.json").read_text())
    assert r0["world"] == r1["world"] == 2
    assert r0["checksum"] == r1["checksum"] and r0["first"] == r1["first"]  # gradients all-reduced
    assert len(r0["batches"]) == len(r1["batches"]) == 6
    assert set(r0["batches"]).isdisjoint(r1["batches"])  # each rank saw its own shard
    assert (cfg.run_dir / "checkpoints" / "last" / "model.safetensors").is_file()
    state = json.loads((cfg.run_dir / "checkpoints" / "last" / "training_state.json").read_text())
    assert state["state"]["world_size"] == 2 and state["state"]["step"] == 6
