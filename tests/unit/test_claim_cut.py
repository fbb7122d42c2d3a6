"""How much of the waiting queue one claim takes (both backends' claims cut the same way)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trapline.events.queue import claim_cut


def test_takes_oldest_first_while_the_events_fit():
    assert claim_cut([(1, 400), (2, 500), (3, 200), (4, 1)], 1000) == [1, 2]
    assert claim_cut([(1, 400), (2, 600)], 1000) == [1, 2]  # exactly full


def test_a_request_larger_than_a_batch_still_moves():
    assert claim_cut([(7, 5000), (8, 1)], 1000) == [7]


def test_without_a_bound_takes_every_candidate():
    assert claim_cut([(1, 10**6), (2, 10**6)], None) == [1, 2]
    assert claim_cut([], 1000) == []


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=40), st.integers(min_value=1, max_value=1000))
def test_a_prefix_that_fits_and_could_not_take_one_more(counts: list[int], bound: int):
    candidates = list(enumerate(counts))
    ids = claim_cut(candidates, bound)
    assert ids == list(range(len(ids)))  # a prefix, in order
    taken = sum(counts[: len(ids)])
    assert bool(ids) == bool(counts)
    assert len(ids) == 1 or taken <= bound
    if len(ids) < len(counts):
        assert taken + counts[len(ids)] > bound
