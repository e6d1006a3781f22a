"""Region and pixel queries: greedy windows, budgets, revealed pixels."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsaal.engine.pixel_query import PixelQuery
from mmsaal.pool import RevealedPixels, RoundStore, load_masks, save_masks
from mmsaal.regions import (rank_pixels, rank_regions, take_pool_wide,
                            units_mask)


def brute_force_regions(score_map, size, count, blocked):
    """Greedy over every window, overlap checked pixel by pixel."""
    height, width = score_map.shape
    taken = np.zeros((height, width), bool)
    picks = []
    for _ in range(count):
        best, where = -np.inf, None
        for y in range(height - size + 1):
            for x in range(width - size + 1):
                window = (slice(y, y + size), slice(x, x + size))
                if taken[window].any() or blocked[window].any():
                    continue
                mean = score_map[window].mean()
                if mean > best:
                    best, where = mean, (y, x)
        if where is None:
            break
        picks.append((where, best))
        taken[where[0]:where[0] + size, where[1]:where[1] + size] = True
    return picks


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 8))
def test_regions_are_the_greedy_best_and_never_overlap(seed, size, count):
    rng = np.random.default_rng(seed)
    score_map = rng.random((11, 13))
    blocked = rng.random((11, 13)) < 0.05
    corners, scores = rank_regions(
        torch.from_numpy(score_map), size, count, torch.from_numpy(blocked))
    expected = brute_force_regions(score_map, size, count, blocked)
    assert [tuple(c) for c in corners] == [w for w, _ in expected]
    np.testing.assert_allclose(scores, [s for _, s in expected], rtol=1e-12)
    cover = np.zeros_like(score_map, dtype=int)
    for y, x in corners:
        cover[y:y + size, x:x + size] += 1
    assert cover.max(initial=0) <= 1
    assert not (cover.astype(bool) & blocked).any()
    assert np.all(np.diff(scores) <= 0)


def test_pixels_rank_by_score_then_position_and_skip_revealed():
    score_map = torch.tensor([[0.5, 0.9, 0.1], [0.9, 0.2, 0.7]])
    blocked = torch.tensor([[False, False, False], [False, False, True]])
    corners, scores = rank_pixels(score_map, 4, blocked)
    assert corners.tolist() == [[0, 1], [1, 0], [0, 0], [1, 1]]
    np.testing.assert_allclose(scores, [0.9, 0.9, 0.5, 0.2], rtol=1e-6)


def test_pool_wide_merge_equals_one_greedy_pass_over_the_pool():
    rng = np.random.default_rng(3)
    maps = {i: rng.random((9, 9)) for i in range(4)}
    ranked = {}
    for i, score_map in maps.items():
        corners, scores = rank_regions(torch.from_numpy(score_map), 3, 20)
        ranked[i] = dict(corners=corners, scores=scores, shape=(9, 9))
    taken = take_pool_wide(ranked, 7)
    assert sum(taken.values()) == 7
    # Brute force: the 7 best of all regions, each image's in greedy order.
    pooled = sorted(((s, i) for i, r in ranked.items() for s in r['scores']),
                    key=lambda t: -t[0])[:7]
    expected = {}
    for _, i in pooled:
        expected[i] = expected.get(i, 0) + 1
    assert taken == expected


def query(tmp_path, granularity='region', per_image=True):
    return PixelQuery(granularity, 4, per_image,
                      RoundStore(str(tmp_path / 'rounds')))


@pytest.mark.parametrize('granularity, per_image', [
    ('region', True), ('region', False), ('pixel', True), ('pixel', False)])
def test_the_budget_is_spent_exactly(tmp_path, granularity, per_image):
    pixel_query = query(tmp_path, granularity, per_image)
    shapes = [(16, 32), (16, 32), (24, 16)]
    fraction = 0.1
    total = pixel_query.total_units(shapes, fraction)
    ranked = {}
    rng = np.random.default_rng(0)
    for i, shape in enumerate(shapes):
        score_map = torch.from_numpy(rng.random(shape))
        ranked[i] = pixel_query.rank(
            score_map, i, pixel_query.max_units(shape, fraction, total))
    chosen = pixel_query.select(ranked, total)
    revealed = pixel_query.reveal(chosen, shapes)
    area = 16 if granularity == 'region' else 1
    if per_image:
        for i, shape in enumerate(shapes):
            expected = int(fraction * shape[0] * shape[1] // area) * area
            assert pixel_query.revealed.num_revealed([i]) == expected
    else:
        assert revealed == int(fraction * sum(h * w for h, w in shapes)
                               // area) * area


def test_the_next_round_never_reveals_a_pixel_twice(tmp_path):
    pixel_query = query(tmp_path)
    shape = (16, 16)
    score_map = torch.ones(shape)
    score_map[:4, :4] = 10  # the best window, revealed in round 1
    first = None
    for _ in range(3):
        chosen = pixel_query.select(
            {0: pixel_query.rank(score_map, 0, 3)}, 3)
        first = chosen if first is None else first
        pixel_query.reveal(chosen, [shape])
    assert first[0]['corners'][0].tolist() == [0, 0]
    assert pixel_query.revealed.mask(0)[:4, :4].all()
    assert pixel_query.revealed.num_revealed() == 9 * 16
    with pytest.raises(ValueError, match='revealed already'):
        pixel_query.revealed.reveal(0, np.ones(shape, bool))


def test_revealed_pixels_replay_from_their_round_files(tmp_path):
    revealed = RevealedPixels()
    rng = np.random.default_rng(0)
    for round_idx in range(3):
        deltas = []
        for index in (0, 2):
            taken = revealed.mask(index)
            mask = rng.random((7, 9)) < 0.2
            if taken is not None:
                mask &= ~taken
            revealed.reveal(index, mask)
            deltas.append((index, mask))
        save_masks(str(tmp_path / f'{round_idx}.npz'), deltas)
        np.testing.assert_array_equal(
            load_masks(str(tmp_path / f'{round_idx}.npz'))[2], deltas[1][1])
    replayed = RevealedPixels()
    for round_idx in range(3):
        replayed.load_round(str(tmp_path / f'{round_idx}.npz'))
    assert replayed.indices == [0, 2]
    for index in (0, 2):
        np.testing.assert_array_equal(replayed.mask(index),
                                      revealed.mask(index))
        assert replayed.num_revealed([index]) == revealed.mask(index).sum()
    with pytest.raises(RuntimeError, match='missing'):
        replayed.load_round(str(tmp_path / 'none.npz'))


def test_units_mask_covers_the_regions():
    mask = units_mask((6, 6), np.array([[0, 0], [3, 2]]), 'region', 3)
    assert mask.sum() == 18 and mask[0, 0] and mask[5, 4] and not mask[5, 5]
