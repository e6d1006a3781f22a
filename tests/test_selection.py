import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsaal.selection import kmeans_pp_seeding, top_k


def test_top_k_largest_first_ties_by_position():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.2])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    with pytest.raises(ValueError, match='cannot pick 6'):
        top_k(scores, 6)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=1, max_size=40), st.data())
def test_kmeans_pp_picks_distinct_and_starts_at_the_max(scores, data):
    k = data.draw(st.integers(1, len(scores)))
    picks = kmeans_pp_seeding(np.array(scores), k,
                              np.random.default_rng(0))
    assert len(set(picks.tolist())) == k
    assert scores[picks[0]] == max(scores)


def test_kmeans_pp_spreads_over_clusters():
    scores = np.array([10.0] * 5 + [0.0] * 5)
    picks = kmeans_pp_seeding(scores, 2, np.random.default_rng(1))
    assert {int(scores[p]) for p in picks} == {10, 0}
