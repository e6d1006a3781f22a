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


def dense_kmeans_pp(scores, k, rng):
    """The definition, O(k N): every pick updates every distance, every
    draw is ``rng.choice`` over all candidates."""
    points = np.asarray(scores, np.float64)[:, None]
    if k == 0:
        return []
    picks = [int(top_k(points[:, 0], 1)[0])]
    nearest = ((points - points[picks[0]])**2).sum(axis=1)
    while len(picks) < k:
        total = nearest.sum()
        if total <= 0:
            remaining = np.setdiff1d(np.arange(len(points)), picks)
            order = top_k(points[remaining, 0], k - len(picks))
            return picks + [int(i) for i in remaining[order]]
        choice = int(rng.choice(len(points), p=nearest / total))
        picks.append(choice)
        nearest = np.minimum(nearest,
                             ((points - points[choice])**2).sum(axis=1))
    return picks


@pytest.mark.parametrize('style', ['uniform', 'ties', 'zeros', 'signed'])
def test_kmeans_pp_over_scores_draws_as_the_definition(style):
    """The O(N log N) seeding over a score vector picks what the O(k N)
    definition picks, draw for draw, with the same generator: ties,
    repeated values and coinciding candidates included."""
    for seed in range(150):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 400))
        scores = rng.random(n)
        if style == 'ties':
            scores = np.round(scores * 4) / 4
        elif style == 'zeros':
            scores[rng.random(n) < 0.6] = 0.0
        elif style == 'signed':
            scores = rng.normal(size=n) * 100
        k = int(rng.integers(0, n + 1))
        fast = kmeans_pp_seeding(scores, k, np.random.default_rng(seed + 1))
        assert fast.tolist() == dense_kmeans_pp(
            scores, k, np.random.default_rng(seed + 1)), (style, seed)


def test_a_query_whose_scores_give_no_order_is_named():
    import numpy as np

    from mmsaal.rounds.pipeline import tie_note
    from mmsaal.rounds.units import Query
    flat = Query(np.asarray([0, 1]), units={
        0: dict(corners=np.zeros((2, 2)), scores=np.zeros(2)),
        1: dict(corners=np.zeros((1, 2)), scores=np.asarray([-0.0]))})
    assert 'all 3 queried units score exactly 0' in tie_note(flat)
    ranked = Query(np.asarray([0]), units={
        0: dict(corners=np.zeros((2, 2)), scores=np.asarray([2.0, 1.0]))})
    assert tie_note(ranked) is None
    tied = Query(np.asarray([0, 1]), scores={0: 1.0, 1: 1.0, 2: 1.0, 3: .5})
    assert tie_note(tied).startswith('3 of the 4 scored items share the top')
    assert tie_note(Query(np.asarray([0]), scores={0: 2.0, 1: 1.0})) is None
    assert tie_note(Query(np.asarray([0]))) is None
