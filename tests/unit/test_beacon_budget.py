"""The Beacon query budget: sliding windows per key, all-or-nothing charges, the wait until there is room."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus.gateway.beacon_budget import BUCKETS, Charge, QueryBudget, retry_after


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


ANON = Charge(("anonymous", "10.0.0.1"), 3)
IP = Charge(("ip", "10.0.0.1"), 5)


def test_a_spent_counter_refuses_until_its_oldest_queries_leave_the_window():
    clock = Clock()
    budget = QueryBudget(60.0, clock=clock)
    for _ in range(3):
        assert budget.charge([ANON, IP]) is None
        clock.now += 1
    spent = budget.charge([ANON, IP])
    assert spent is not None and spent.charge == ANON
    # The first query was charged at 1000 s, in the step [1000, 1001): it leaves the window at 1060.
    assert spent.wait_s == 1060.0 - clock.now
    clock.now = 1059.9
    assert budget.charge([ANON, IP]) is not None
    clock.now = 1060.0
    assert budget.charge([ANON, IP]) is None


def test_a_refused_query_is_charged_to_no_counter():
    clock = Clock()
    budget = QueryBudget(60.0, clock=clock)
    for _ in range(3):
        assert budget.charge([ANON, IP]) is None
    for _ in range(10):
        assert budget.charge([ANON, IP]) is not None
    # The IP counter still holds 3: a login from the same address gets its 2 remaining queries.
    user = Charge(("user", "alice"), 100)
    assert budget.charge([user, IP]) is None
    assert budget.charge([user, IP]) is None
    refused = budget.charge([user, IP])
    assert refused is not None and refused.charge == IP


def test_counters_are_per_key():
    budget = QueryBudget(60.0, clock=Clock())
    for _ in range(3):
        assert budget.charge([ANON]) is None
    assert budget.charge([ANON]) is not None
    assert budget.charge([Charge(("anonymous", "10.0.0.2"), 3)]) is None


def test_idle_counters_are_forgotten():
    clock = Clock()
    budget = QueryBudget(60.0, clock=clock)
    budget.charge([ANON, IP])
    budget.charge([Charge(("anonymous", "10.0.0.2"), 3)])
    assert len(budget) == 3
    clock.now += 61
    budget.charge([Charge(("anonymous", "10.0.0.3"), 3)])
    assert len(budget) == 1


@settings(max_examples=60, derandomize=True, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=60),
       limit=st.integers(min_value=1, max_value=8))
def test_never_more_than_the_limit_in_any_window(gaps, limit):
    """However queries are spaced, no window of the budget's length holds more than ``limit`` charged queries
    (the window slides by whole steps, so a window measured from a step boundary)."""
    clock = Clock(0.0)
    window = 60.0
    budget = QueryBudget(window, clock=clock)
    charged = []
    for gap in gaps:
        clock.now += gap
        if budget.charge([Charge(("user", "u"), limit)]) is None:
            charged.append(clock.now)
    step = window / BUCKETS
    for t in charged:
        start = (t // step) * step
        assert sum(1 for c in charged if start <= c < start + window) <= limit


def test_retry_after_is_whole_seconds_rounded_up():
    assert retry_after(0.0) == "1"
    assert retry_after(1.2) == "2"
    assert retry_after(59.0) == "59"
