"""The visiting order depends on (seed, epoch) only, is split across ranks, and resumes mid-epoch."""

from mcnn.train.sampling import EpochSampler, loader_workers


def test_order_is_reproducible_and_changes_with_epoch():
    a = list(EpochSampler(20, 4, seed=1, epoch=0))
    assert a == list(EpochSampler(20, 4, seed=1, epoch=0))
    assert a != list(EpochSampler(20, 4, seed=1, epoch=1))
    assert sorted(a) == list(range(20))


def test_resume_continues_at_the_batch_where_it_stopped():
    full = list(EpochSampler(20, 4, seed=3, epoch=2))
    assert list(EpochSampler(20, 4, seed=3, epoch=2, start_batch=3)) == full[12:]


def test_ranks_get_disjoint_equal_shares():
    r0 = list(EpochSampler(21, 2, seed=0, epoch=0, rank=0, world_size=2))
    r1 = list(EpochSampler(21, 2, seed=0, epoch=0, rank=1, world_size=2))
    assert len(r0) == len(r1) == 10 and not set(r0) & set(r1)


def test_loader_workers_auto_uses_spare_cores_only_on_cuda(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert loader_workers(None, "cpu") == 0  # simulation and network share the cores
    assert loader_workers(None, "cuda") == 8  # capped
    assert loader_workers(None, "cuda", world_size=4) == 2  # 16 // 4 - 2 per rank
    assert loader_workers(3, "cpu") == 3 and loader_workers(0, "cuda") == 0  # as asked
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert loader_workers(None, "cuda") == 0  # no spare core
