"""Progress lines reach the log whatever stderr is, at a fixed wall-time and step interval."""

import logging

from mcnn.train.progress import ProgressReporter
from mcnn.train.trainer import Trainer
from tests.mcnn.train.test_resume import micro


class FakeClock:
    def __init__(self, step_s):
        self.t, self.step_s = 0.0, step_s

    def __call__(self):
        self.t += self.step_s
        return self.t


def test_a_line_every_interval_of_wall_time():
    r = ProgressReporter(1000, 0, every_s=10, every_steps=500, clock=FakeClock(1.0))
    lines = {s: r.update(s, 0.5, 1e-3) for s in range(1, 31)}
    assert [s for s, line in lines.items() if line] == [10, 20, 30]
    assert lines[10] == "step 10/1000 (1%)  1.00 it/s  loss 0.5  lr 0.001  ETA 0:16:30"


def test_a_line_at_least_every_n_steps_when_steps_are_fast():
    r = ProgressReporter(1000, 0, every_s=10, clock=FakeClock(0.001))
    due = [s for s in range(1, 1001) if r.update(s, 0.1, 1e-3)]
    assert due == list(range(100, 1001, 100))  # every total/10 steps, and the last


def test_fit_logs_progress_when_stderr_is_not_a_terminal(tmp_path, caplog, capsys):
    cfg = micro(tmp_path, train__steps=6, train__val_every=6)
    caplog.set_level(logging.INFO, logger="mcnn.train")
    t = Trainer(cfg)  # progress=None: decided from stderr, which capsys makes a non-tty
    assert t.progress is False
    t.fit()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    progress = [m for m in lines if " it/s  loss " in m and " lr " in m and " ETA " in m]
    assert [m.split()[1] for m in progress][:5] == ["1/6", "2/6", "3/6", "4/6", "5/6"]
