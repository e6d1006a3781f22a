"""Region and pixel queries: greedy windows, budgets, revealed pixels."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsaal.pool import (PixelLabels, PoolState, Reveal, RevealedPixels,
                         load_reveals, save_reveals)
from mmsaal.pool_samplers import BasePoolSampler
from mmsaal.regions import (best_first, class_shares, kth_largest,
                            rank_pixels, rank_regions,
                            units_mask)
from mmsaal.rounds import PixelUnits, pick_units
from mmsaal.selection import tie_keys


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


class MapSampler(BasePoolSampler):
    """Scores every pixel with a given map (by image path)."""

    def __init__(self, maps, diversity=False, labels=None):
        super().__init__(diversity=diversity)
        self.maps = maps
        self.labels = labels

    def score_maps(self, model, data_batch):
        return [self.maps[s.img_path] for s in data_batch['data_samples']]

    def labeled_score_maps(self, model, data_batch):
        if self.labels is None:
            return super().labeled_score_maps(model, data_batch)
        return [(self.maps[s.img_path], self.labels[s.img_path])
                for s in data_batch['data_samples']]


def pixel_units(tmp_path, shapes, granularity='region', per_image=True,
                fraction=0.1):
    return PixelUnits(
        granularity, 4, per_image, fraction,
        PixelLabels([f'{i}.png' for i in range(len(shapes))],
                    str(tmp_path / 'revealed'), shapes))


def select_round(units, sampler, state, seed=0, ties=None, shards=1):
    """What a round picks: candidates, ranked units (scored in ``shards``
    batches, as ranks score theirs), the sampler's pick."""
    candidates = units.candidates(state)
    budget = units.round_budget(state, candidates)
    units.prepare(sampler, state, budget, ties)
    scored = []
    for shard in np.array_split(candidates, shards):
        batch = dict(data_samples=[
            SimpleNamespace(img_path=units.pixels.paths[i]) for i in shard])
        scored += units.score_batch(sampler, None, batch)
    table = units.table(candidates, scored)
    picked = pick_units(sampler, table, budget, np.random.default_rng(seed),
                        ties)
    return units.query(table, picked, {})


def queried_corners(query):
    return {i: u['corners'].tolist() for i, u in query.units.items()}


@pytest.mark.parametrize('granularity, per_image, diversity', [
    ('region', True, False), ('region', False, False),
    ('region', True, 'classes'), ('pixel', False, False),
    ('pixel', True, True)])
def test_flat_maps_query_a_seeded_random_pattern(tmp_path, granularity,
                                                 per_image, diversity):
    """A model that scores every pixel 0 (SAAL x impurity of one predicted
    class): the round's units are a random draw among the ties, the same
    for the same round seed however the pool is sharded, another for
    another seed, and not the top rows of each image."""
    shapes = [(24, 40)] * 6
    maps = {f'{i}.png': torch.zeros(s) for i, s in enumerate(shapes)}
    labels = {p: torch.zeros(s, dtype=torch.long)
              for p, s in zip(maps, shapes)}
    sampler = MapSampler(maps, diversity=diversity, labels=labels)

    def pick(ties, shards=1):
        units = pixel_units(tmp_path, shapes, granularity, per_image, 0.05)
        state = PoolState(list(maps), pixels=True, seed=0)
        return queried_corners(select_round(units, sampler, state, ties=ties,
                                            shards=shards))

    row_major = pick(None)
    first = pick(PoolState(list(maps), seed=0).tie_seed(1))
    assert first == pick(PoolState(list(maps), seed=0).tie_seed(1), 3)
    assert first != row_major
    assert first != pick(PoolState(list(maps), seed=1).tie_seed(1))
    # Row-major order takes the top rows; the draw spreads down the image.
    rows = [y for corners in first.values() for y, _ in corners]
    top = [y for corners in row_major.values() for y, _ in corners]
    assert max(top) < 8 and max(rows) >= 8
    if per_image:
        assert sorted(first) == list(range(6))


def test_equal_items_are_drawn_at_random_and_unequal_ones_keep_order():
    """Tied whole items (one score for all) are a seeded draw; items with
    distinct scores are picked as without a tie seed, and so are draws
    (k-means++) that meet no tie."""
    from mmsaal.rounds import Budget
    from mmsaal.rounds.units import UnitTable
    sampler = MapSampler({})
    flat = UnitTable(np.arange(50), np.zeros(50))
    picks = {tuple(pick_units(sampler, flat, Budget(5), None, t).tolist())
             for t in range(4)}
    assert len(picks) == 4 and (0, 1, 2, 3, 4) not in picks
    rng = np.random.default_rng(0)
    ranked = UnitTable(np.arange(50), rng.random(50))
    for diversity in (False, True):
        sampler = MapSampler({}, diversity=diversity)
        plain = pick_units(sampler, ranked, Budget(5),
                           np.random.default_rng(1))
        seeded = pick_units(sampler, ranked, Budget(5),
                            np.random.default_rng(1), 123)
        assert plain.tolist() == seeded.tolist()


def test_a_pool_wide_pick_is_one_greedy_pass_over_the_pool(tmp_path):
    rng = np.random.default_rng(3)
    shapes = [(9, 9)] * 4
    maps = {f'{i}.png': torch.from_numpy(rng.random(s)).float()
            for i, s in enumerate(shapes)}
    units = PixelUnits('region', 3, False, 7 * 9 / (4 * 81),
                       PixelLabels(list(maps), str(tmp_path), shapes))
    state = PoolState(list(maps), pixels=True)
    query = select_round(units, MapSampler(maps), state)
    assert sum(len(u['scores']) for u in query.units.values()) == 7
    # Brute force: the 7 best of all greedy regions, each image's in its
    # greedy order.
    ranked = {
        i: rank_regions(maps[f'{i}.png'], 3, 7)[1] for i in range(4)
    }
    pooled = sorted(((s, i) for i, r in ranked.items() for s in r),
                    key=lambda t: -t[0])[:7]
    expected = {}
    for score, i in pooled:
        expected.setdefault(i, []).append(score)
    assert {i: u['scores'].tolist()
            for i, u in query.units.items()} == expected


@pytest.mark.parametrize('granularity, per_image', [
    ('region', True), ('region', False), ('pixel', True), ('pixel', False)])
def test_the_budget_is_spent_exactly(tmp_path, granularity, per_image):
    shapes = [(16, 32), (16, 32), (24, 16)]
    fraction = 0.1
    units = pixel_units(tmp_path, shapes, granularity, per_image, fraction)
    rng = np.random.default_rng(0)
    maps = {p: torch.from_numpy(rng.random(s))
            for p, s in zip(units.pixels.paths, shapes)}
    state = PoolState(units.pixels.paths, pixels=True)
    revealed = state.reveal_round(
        units.reveals(select_round(units, MapSampler(maps), state)))
    area = 16 if granularity == 'region' else 1
    if per_image:
        for i, shape in enumerate(shapes):
            expected = int(fraction * shape[0] * shape[1] // area) * area
            assert state.revealed.num_revealed([i]) == expected
    else:
        assert revealed == int(fraction * sum(h * w for h, w in shapes)
                               // area) * area
    assert state.labeled_indices().tolist() == [0, 1, 2]
    assert state.round == 0


def test_the_next_round_never_reveals_a_pixel_twice(tmp_path):
    shape = (16, 16)
    units = pixel_units(tmp_path, [shape], fraction=3 * 16 / 256)
    score_map = torch.ones(shape)
    score_map[:4, :4] = 10  # the best window, revealed in round 1
    state = PoolState(units.pixels.paths, pixels=True)
    first = None
    for _ in range(3):
        query = select_round(units, MapSampler({'0.png': score_map}), state)
        first = query if first is None else first
        state.reveal_round(units.reveals(query))
    assert first.units[0]['corners'][0].tolist() == [0, 0]
    assert state.revealed.mask(0)[:4, :4].all()
    assert state.revealed.num_revealed() == 9 * 16
    with pytest.raises(ValueError, match='revealed already'):
        state.revealed.reveal(0, np.ones(shape, bool))


@pytest.mark.parametrize('granularity', ['region', 'pixel'])
def test_diversity_picks_beyond_the_top_units(tmp_path, granularity):
    """With diversity each image offers more ranked units than its share
    and the sampler's k-means++ picks among them: the best unit first,
    then units far from it in score. Without it, the share is the top."""
    shape = (32, 32)
    units = pixel_units(tmp_path, [shape], granularity, fraction=4 * 16 /
                        1024)
    share = units.share(0)
    # One share's worth of high scores in a corner, low ones elsewhere: the
    # top-k takes the corner; the 4x candidates reach the low scores too.
    score_map = torch.full(shape, 0.01)
    score_map[:8, :8] = 10.0
    score_map[0, 0] = 11.0
    maps = {'0.png': score_map}
    state = PoolState(units.pixels.paths, pixels=True)
    top = select_round(units, MapSampler(maps), state).units[0]
    diverse = select_round(units, MapSampler(maps, diversity=True),
                           state).units[0]
    assert len(top['scores']) == len(diverse['scores']) == share
    assert min(top['scores']) >= 10.0
    assert max(diverse['scores']) == max(top['scores'])
    assert min(diverse['scores']) < 1.0  # reached the low scores
    # Regions never overlap, whichever were picked.
    mask = units_mask(shape, diverse['corners'], granularity, 4)
    assert mask.sum() == share * units.area


@pytest.mark.parametrize('granularity', ['region', 'pixel'])
def test_class_diversity_spreads_a_round_over_predicted_classes(
        tmp_path, granularity):
    """diversity='classes': k-means++ over each unit's class shares times
    its score. Two predicted classes score almost alike; the top units all
    show one of them, the diverse pick takes units of both."""
    shape = (32, 32)
    units = pixel_units(tmp_path, [shape], granularity, fraction=4 * 16 /
                        1024)
    score_map = torch.full(shape, 9.99)  # class 3 on the right
    score_map[:, :16] = 9.0  # class 0 on the left, its best rows at 10
    score_map[:8, :16] = 10.0
    score_map[:4, :4] = 10.5
    labels = torch.zeros(shape, dtype=torch.int64)
    labels[:, 16:] = 3
    maps, label_maps = {'0.png': score_map}, {'0.png': labels}
    state = PoolState(units.pixels.paths, pixels=True)

    def classes_of(picked):
        side = 4 if granularity == 'region' else 1
        return sorted({int(labels[y:y + side, x:x + side].max())
                       for y, x in picked['corners']})

    top = select_round(units, MapSampler(maps), state).units[0]
    assert classes_of(top) == [0]
    for seed in range(5):
        diverse = select_round(
            units, MapSampler(maps, 'classes', label_maps), state,
            seed=seed).units[0]
        assert len(diverse['scores']) == units.share(0)
        assert max(diverse['scores']) == max(top['scores'])
        assert classes_of(diverse) == [0, 3]
    # A sampler that predicts no classes is refused, naming the fix.
    with pytest.raises(NotImplementedError, match='diversity=True'):
        select_round(units, MapSampler(maps, 'classes'), state)


def test_class_shares_count_each_units_pixels():
    labels = torch.tensor([[0, 0, 2, 2], [0, 1, 2, 2], [1, 1, 1, 1]])
    shares = class_shares(labels, np.array([[0, 0], [0, 2], [1, 1]]),
                          'region', 2)
    np.testing.assert_allclose(
        shares, [[0.75, 0.25, 0], [0, 0, 1], [0, 0.75, 0.25]])
    # A pixel's share is its class alone: the class is what is kept.
    assert class_shares(labels, np.array([[1, 1], [0, 2]]), 'pixel',
                        2).tolist() == [1, 2]


def test_diversity_takes_known_modes_only():
    with pytest.raises(ValueError, match="diversity must be one of"):
        BasePoolSampler(diversity='kmeans')
    with pytest.raises(ValueError, match="diversity must be one of"):
        BasePoolSampler(diversity=1)
    with pytest.raises(ValueError, match='use diversity=True'):
        BasePoolSampler(diversity='classes').select(
            np.ones(3), 3, 1, np.random.default_rng(0))


def test_revealed_pixels_replay_from_their_round_files(tmp_path):
    revealed = RevealedPixels()
    rng = np.random.default_rng(0)
    for round_idx in range(3):
        reveals = []
        for index in (0, 2):
            taken = revealed.mask(index)
            mask = rng.random((7, 9)) < 0.2
            if taken is not None:
                mask &= ~taken
            reveal = Reveal((7, 9), 'pixel', np.argwhere(mask))
            revealed.reveal(index, reveal, round_idx)
            reveals.append((index, reveal))
        save_reveals(str(tmp_path / f'{round_idx}.npz'), reveals)
        loaded = dict(load_reveals(str(tmp_path / f'{round_idx}.npz')))
        np.testing.assert_array_equal(loaded[2].mask(), reveals[1][1].mask())
    replayed = RevealedPixels()
    for round_idx in range(3):
        replayed.load_round(str(tmp_path / f'{round_idx}.npz'), round_idx)
    assert replayed.indices == [0, 2]
    for index in (0, 2):
        np.testing.assert_array_equal(replayed.mask(index),
                                      revealed.mask(index))
        assert replayed.num_revealed([index]) == revealed.mask(index).sum()
    assert replayed.touched_after(1) == [0, 2]
    assert replayed.touched_after(2) == []
    with pytest.raises(RuntimeError, match='missing'):
        replayed.load_round(str(tmp_path / 'none.npz'))


def test_units_mask_covers_the_regions():
    mask = units_mask((6, 6), np.array([[0, 0], [3, 2]]), 'region', 3)
    assert mask.sum() == 18 and mask[0, 0] and mask[5, 4] and not mask[5, 5]


def keys_of(flat, ties):
    return np.asarray(flat) if ties is None else tie_keys(ties, flat)


def reference_regions(score_map, size, count, blocked=None, ties=None):
    """The definition: float64 ``avg_pool2d`` and one full-map argmax per
    region (on ties, the smallest tie key: the first index without a
    seed), overlapping windows set to -inf."""
    import torch.nn.functional as F
    height, width = score_map.shape
    if height < size or width < size or count <= 0:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    window = F.avg_pool2d(score_map.double()[None, None], size,
                          stride=1)[0, 0]
    if blocked is not None and bool(blocked.any()):
        touches = F.max_pool2d(blocked.double()[None, None], size,
                               stride=1)[0, 0] > 0
        window = window.masked_fill(touches, float('-inf'))
    corners, scores = [], []
    for _ in range(count):
        best = float(window.max())
        if best == float('-inf'):
            break
        tied = np.flatnonzero((window == best).numpy())
        flat = int(tied[np.argmin(keys_of(tied, ties))])
        y, x = divmod(flat, window.shape[1])
        corners.append((y, x))
        scores.append(best)
        window[max(y - size + 1, 0):y + size,
               max(x - size + 1, 0):x + size] = float('-inf')
    return np.asarray(corners, np.int64).reshape(-1, 2), np.asarray(scores)


def reference_pixels(score_map, count, blocked=None, ties=None):
    scores = score_map.double().flatten().numpy()
    free = np.ones_like(scores, bool) if blocked is None else \
        ~blocked.flatten().numpy()
    positions = np.flatnonzero(free)
    order = np.lexsort((keys_of(positions, ties),
                        -scores[positions]))[:count]
    chosen = positions[order]
    return np.stack(np.divmod(chosen, score_map.shape[1]),
                    axis=1).reshape(-1, 2), scores[chosen]


MAP_STYLES = ('uniform', 'sparse', 'levels', 'constant', 'signed', 'zero')


def styled_map(rng, style, shape):
    values = rng.random(shape).astype(np.float32)
    if style == 'sparse':  # impurity-weighted maps: zero inside a class
        values[rng.random(shape) < 0.7] = 0
    elif style == 'levels':  # many windows tie exactly
        values = (np.round(values * 3) / 7).astype(np.float32)
    elif style == 'constant':
        values = np.full(shape, 0.1, np.float32)
    elif style == 'signed':  # score='diff'
        values = values - np.float32(0.5)
    elif style == 'zero':
        values = np.zeros(shape, np.float32)
    return torch.from_numpy(values)


def random_case(rng, style, trial, sides, counts):
    """A map of ``style`` under ``sides`` pixels a side, a region size
    that fits, a count under ``counts`` and, every other trial, blocked
    pixels."""
    height, width = (int(v) for v in rng.integers(3, sides, 2))
    size = int(rng.integers(1, min(height, width) + 1))
    count = int(rng.integers(1, counts))
    score_map = styled_map(rng, style, (height, width))
    blocked = torch.from_numpy(rng.random((height, width)) < 0.05) \
        if trial % 2 else None
    return score_map, size, count, blocked


@pytest.mark.parametrize('ties', [None, 7])
@pytest.mark.parametrize('style', MAP_STYLES)
def test_ranking_equals_the_definition_bit_for_bit(style, ties):
    """Prefix sums, tile maxima and exact re-summing of near ties give the
    corners and scores of avg_pool2d + one argmax per region, to the last
    bit, on maps full of ties, zeros, plateaus and negative values; ties
    go by seeded key (or position without a seed)."""
    rng = np.random.default_rng(MAP_STYLES.index(style))
    for trial in range(60):
        score_map, size, count, blocked = random_case(rng, style, trial, 40,
                                                      30)
        seed = None if ties is None else ties + trial
        corners, scores = rank_regions(score_map, size, count, blocked,
                                       ties=seed)
        expected = reference_regions(score_map, size, count, blocked, seed)
        assert corners.tolist() == expected[0].tolist(), (style, trial)
        assert scores.tolist() == expected[1].tolist(), (style, trial)
        corners, scores = rank_pixels(score_map, count, blocked, ties=seed)
        expected = reference_pixels(score_map, count, blocked, seed)
        assert corners.tolist() == expected[0].tolist()
        assert scores.tolist() == expected[1].tolist()


def test_ranking_stops_at_the_floor_and_refuses_non_finite_maps():
    score_map = torch.tensor([[5., 5., 1.], [5., 5., 1.], [1., 1., 1.]])
    corners, scores = rank_regions(score_map, 1, 9, floor=2.0)
    assert scores.tolist() == [5.0] * 4
    assert len(rank_pixels(score_map, 9, floor=1.0)[1]) == 9
    score_map[2, 2] = float('nan')
    with pytest.raises(ValueError, match='NaN or infinite'):
        rank_regions(score_map, 2, 1)


def test_reveals_round_trip_through_their_file_and_refuse_bad_units(
        tmp_path):
    reveals = [(0, Reveal((6, 8), 'region', [[0, 0], [2, 4]], 2)),
               (3, Reveal((5, 5), 'pixel', [[0, 1], [4, 4], [2, 2]])),
               (7, Reveal((4, 4)))]
    path = str(tmp_path / 'revealed.npz')
    save_reveals(path, reveals)
    loaded = load_reveals(path)
    assert [i for i, _ in loaded] == [0, 3, 7]
    for (_, a), (_, b) in zip(reveals, loaded):
        assert a == b and a.count() == b.count()
    assert loaded[1][1].count() == 3 and loaded[2][1].count() == 16
    # A format-1 file of earlier versions (a packed mask per image) reads.
    old = str(tmp_path / 'old.npz')
    mask = reveals[0][1].mask()
    np.savez_compressed(old, **{'0': np.packbits(mask, axis=None),
                                '0_shape': np.asarray(mask.shape)})
    assert load_reveals(old)[0][1] == reveals[0][1]
    with open(path, 'r+b') as f:
        f.truncate(40)
    with pytest.raises(RuntimeError, match='revealed.npz.*damaged'):
        load_reveals(path)
    with pytest.raises(ValueError, match='overlap'):
        Reveal((6, 6), 'region', [[0, 0], [1, 1]], 2)
    with pytest.raises(ValueError, match='leave the image'):
        Reveal((6, 6), 'region', [[5, 0]], 2)
    with pytest.raises(ValueError, match='twice'):
        Reveal((6, 6), 'pixel', [[1, 1], [1, 1]])


@settings(max_examples=60, deadline=None)
@given(size=st.one_of(st.integers(1, 5000), st.integers(262_144, 2_200_000)),
       k_share=st.one_of(st.floats(0, 0.01), st.floats(0, 1)),
       levels=st.sampled_from([0, 3, 1000]), seed=st.integers(0, 2**16),
       blocked=st.floats(0, 1), dtype=st.sampled_from(['float32',
                                                       'float64']))
def test_the_kth_largest_value_is_the_full_partitions(size, k_share, levels,
                                                      seed, blocked, dtype):
    """The k-th largest from the values above a sampled threshold is what a
    partition of all values gives: with ties (few levels), with -inf
    (blocked pixels), for any k, on maps too small to sample."""
    rng = np.random.default_rng(seed)
    values = rng.random(size).astype(dtype)
    if levels:
        values = np.floor(values * levels).astype(dtype)
    values[rng.random(size) < blocked] = -np.inf
    k = min(size, max(1, int(k_share * size)))
    want = np.partition(values, size - k)[size - k]
    got = kth_largest(values, k)
    assert got == want or (np.isneginf(got) and np.isneginf(want))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), levels=st.sampled_from([0, 4]),
       floor=st.sampled_from([None, 0.5, 0.9]), blocked=st.booleans(),
       ties=st.sampled_from([None, 3]))
def test_pixels_ranked_in_position_order_sort_to_the_ranked_order(
        seed, levels, floor, blocked, ties):
    """A pool-wide image keeps its pixels above the floor in position order
    (``ordered=False``); put best first by :func:`best_first`, they are
    what the ranking gives, ties by the same keys."""
    rng = np.random.default_rng(seed)
    values = rng.random((13, 17))
    if levels:
        values = np.floor(values * levels) / levels
    mask = torch.from_numpy(rng.random((13, 17)) < 0.2) if blocked else None
    score_map = torch.from_numpy(values).float()
    want = rank_pixels(score_map, 10**6, mask, floor, ties=ties)
    corners, scores = rank_pixels(score_map, 10**6, mask, floor,
                                  ordered=False, ties=ties)
    order = best_first(corners, scores, 17, ties)
    assert corners[order].tolist() == want[0].tolist()
    assert scores[order].tolist() == want[1].tolist()


@pytest.mark.parametrize('ties', [None, 11])
@pytest.mark.parametrize('style', MAP_STYLES)
def test_ranking_above_a_floor_equals_the_definition_bit_for_bit(
        style, ties, monkeypatch):
    """Above a floor (pool-wide rounds), regions come from the windows
    that can reach it, ordered once, unless near ties could change a pick:
    either way the corners and scores of the definition cut at the floor.
    """
    import mmsaal.regions as regions
    paths = []
    greedy_above = regions._greedy_above

    def spy(*args, **kwargs):
        ranked = greedy_above(*args, **kwargs)
        paths.append(ranked is not None)
        return ranked

    monkeypatch.setattr(regions, '_greedy_above', spy)
    rng = np.random.default_rng(50 + MAP_STYLES.index(style))
    for trial in range(60):
        score_map, size, count, blocked = random_case(rng, style, trial, 50,
                                                      40)
        corners, scores = reference_regions(score_map, size, 10**6, blocked,
                                            ties)
        if not len(scores):
            continue
        floor = float(scores[int(rng.integers(0, len(scores)))]) \
            if trial % 3 else float(rng.uniform(-0.5, 1.0))
        keep = scores >= floor
        got = rank_regions(score_map, size, count, blocked, floor, ties)
        assert got[0].tolist() == corners[keep][:count].tolist(), trial
        assert got[1].tolist() == scores[keep][:count].tolist(), trial
    if style in ('uniform', 'sparse'):
        assert any(paths)  # the sparse path ran, and agreed


def test_window_means_add_each_window_in_its_order():
    """Few windows by slices, more row by row, many pixel by pixel: each
    the sum of avg_pool2d's order (one cumulative sum) over the area."""
    from mmsaal.regions import window_means
    rng = np.random.default_rng(0)
    values = rng.random((70, 90)).astype(np.float32)
    for count in (3, 40, 700):
        size = 5
        ys = rng.integers(0, 70 - size + 1, count)
        xs = rng.integers(0, 90 - size + 1, count)
        expected = [np.cumsum(values[y:y + size, x:x + size].astype(
            np.float64).ravel())[-1] / size**2 for y, x in zip(ys, xs)]
        assert window_means(values, size, ys, xs).tolist() == expected
