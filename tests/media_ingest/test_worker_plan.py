"""How a host's ingest is split into workers: names, port shares, and the one-line refusal."""

import pytest

from media_ingest.worker_plan import PlanError, plan_workers, worker_count


def test_each_worker_gets_a_contiguous_share_of_whole_pairs_and_a_stable_name() -> None:
    plans = plan_workers("node-a", range(40000, 41000), 3)
    assert [p.instance for p in plans] == ["node-a-w0", "node-a-w1", "node-a-w2"]
    assert [p.rtp_setting for p in plans] == ["40000-40333", "40334-40667", "40668-40999"]
    for plan in plans:
        assert plan.rtp_ports.start % 2 == 0 and len(plan.rtp_ports) % 2 == 0
    assert sum(len(p.rtp_ports) for p in plans) == 1000
    assert plans == plan_workers("node-a", range(40000, 41000), 3)  # the same after a restart


def test_an_odd_first_or_last_port_is_left_out_as_the_allocator_leaves_it() -> None:
    plans = plan_workers("h", range(40001, 40010), 2)  # 40001-40009: pairs from 40002 to 40009
    assert [p.rtp_setting for p in plans] == ["40002-40005", "40006-40009"]


def test_one_worker_takes_the_whole_range() -> None:
    [plan] = plan_workers("h", range(40000, 40004), 1)
    assert (plan.instance, plan.rtp_ports) == ("h-w0", range(40000, 40004))


def test_a_range_too_small_for_the_workers_is_one_clear_line() -> None:
    with pytest.raises(PlanError) as refused:
        plan_workers("h", range(40000, 40004), 3)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("INGEST_RTP_PORTS=40000-40003 holds 2 port pair(s)")
    assert "too few for 3 workers (INGEST_WORKERS)" in message


def test_zero_workers_means_one_per_core() -> None:
    assert worker_count(0, 8) == 8
    assert worker_count(0, None) == 1
    assert worker_count(3, 8) == 3
