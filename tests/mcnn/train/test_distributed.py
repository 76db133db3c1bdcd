"""DistributedDataParallel through torchrun on the CPU (gloo): the multi-GPU code path, for real."""

import json
import os
import socket
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, torch
    from mcnn.train.config import TrainConfig
    from mcnn.train.trainer import Trainer

    seen = []

    class Recorder(Trainer):
        def training_step(self, x, y):
            seen.append(float(x.sum()))
            return super().training_step(x, y)

        def on_step_end(self, step, logs):
            if step == 4 and self.dist.rank == 1:  # only one process is told to stop
                os.kill(os.getpid(), signal.SIGTERM)

    cfg = TrainConfig.model_validate(json.loads(sys.argv[1]))
    t = Recorder(cfg, progress=False)
    stopped = False
    try:
        t.fit()
    except KeyboardInterrupt:
        stopped = True
    w = torch.cat([p.detach().flatten() for p in t.model.parameters()])
    d = torch.cat([p.detach().flatten() for p in t.disc.parameters()])
    out = {"rank": t.dist.rank, "world": t.dist.world_size, "checksum": float(w.double().sum()),
           "first": float(w[0]), "disc": d.double().tolist(), "batches": seen, "step": t.step,
           "stopped": stopped, "disc_wrapped": type(t.disc_net).__name__}
    open(sys.argv[2] + f".{t.dist.rank}.json", "w").write(json.dumps(out))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_training_keeps_replicas_identical_and_stops_together(
    tiny_config, tmp_path
):
    cfg = tiny_config(train__steps=6, train__val_every=3, train__device="cpu",
                      loss__adversarial_weight=0.05, loss__discriminator_width=4,
                      loss__discriminator_layers=2)
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
    assert r0["disc_wrapped"] == "DistributedDataParallel"
    assert r0["disc"] == r1["disc"]  # the discriminator is all-reduced too
    # SIGTERM reached rank 1 only; both ranks stopped after the same step
    assert r0["stopped"] and r1["stopped"] and r0["step"] == r1["step"] == 4
    assert len(r0["batches"]) == len(r1["batches"]) == 4
    assert set(r0["batches"]).isdisjoint(r1["batches"])  # each rank saw its own shard
    assert (cfg.run_dir / "checkpoints" / "last" / "model.safetensors").is_file()
    state = json.loads((cfg.run_dir / "checkpoints" / "last" / "training_state.json").read_text())
    assert state["state"]["world_size"] == 2 and state["state"]["step"] == 4
