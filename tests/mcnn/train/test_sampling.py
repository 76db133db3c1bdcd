"""The visiting order depends on (seed, epoch) only, is split across ranks, and resumes mid-epoch."""

from mcnn.train.sampling import EpochSampler


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
