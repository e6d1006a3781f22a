import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsaal.pool import PoolState, RoundStore, read_initial_file
from mmsaal.utils import WorkDirError

NAMES = [f'VOC2007/JPEGImages/{i:06d}.jpg' for i in range(30)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 29), max_size=10), max_size=6))
def test_labeled_and_unlabeled_stay_disjoint_and_complete(queries):
    state = PoolState(NAMES)
    previous = set()
    for query in queries:
        query = list(dict.fromkeys(query))
        fresh = [i for i in query if i not in previous]
        if len(fresh) != len(query):
            with pytest.raises(ValueError, match='already labeled'):
                state.add_round(query)
            continue
        round_before = state.round
        state.add_round(query)
        assert state.round == round_before + 1
        labeled = set(state.labeled_indices().tolist())
        unlabeled = set(state.unlabeled_indices().tolist())
        assert labeled.isdisjoint(unlabeled)
        assert labeled | unlabeled == set(range(len(NAMES)))
        assert previous <= labeled  # rounds only grow
        previous = labeled


def test_store_round_trip_and_atomic_layout(tmp_path):
    store = RoundStore(str(tmp_path / 'rounds'))
    state = PoolState(NAMES, seed=3)
    state.add_round([0, 1, 2])
    store.save_round(state, info=dict(strategy='initial'))
    state.add_round([5, 6])
    store.save_round(state, scores={5: 2.0, 6: 1.5, 7: 0.1})
    assert store.rounds() == [0, 1]
    queried = json.load(open(tmp_path / 'rounds/round_01/queried.json'))
    assert [r['index'] for r in queried['items']] == [5, 6]
    assert queried['items'][0]['name'] == NAMES[5]
    scores = json.load(open(tmp_path / 'rounds/round_01/scores.json'))
    assert len(scores['items']) == 3
    # A leftover of a crash mid-write is ignored and cleaned up.
    os.makedirs(tmp_path / 'rounds/.incomplete_02')
    restored = PoolState(NAMES)
    assert store.load_latest(restored) == 1
    assert restored.labeled_indices().tolist() == [0, 1, 2, 5, 6]
    assert restored.seed == 3
    with pytest.raises(FileExistsError):
        store.save_round(state)


def test_resume_on_another_dataset_is_refused(tmp_path):
    store = RoundStore(str(tmp_path))
    state = PoolState(NAMES)
    state.add_round([1])
    store.save_round(state)
    # One line for train_al.py to print, naming the file.
    with pytest.raises(WorkDirError, match='state.json: the saved pool '
                       'state has 30 items but the dataset has'):
        store.load_latest(PoolState(NAMES[:-1]))
    with pytest.raises(WorkDirError, match='fingerprint'):
        store.load_latest(PoolState(NAMES[::-1]))


def test_corrupt_state_file_names_the_fix(tmp_path):
    store = RoundStore(str(tmp_path))
    state = PoolState(NAMES)
    state.add_round([1])
    store.save_round(state)
    with open(tmp_path / 'round_00' / 'state.json', 'w') as f:
        f.write('{"round": 0, "lab')
    with pytest.raises(RuntimeError, match='missing or corrupt'):
        store.load_latest(PoolState(NAMES))


def test_initial_file_by_position_name_and_stem(tmp_path):
    path = tmp_path / 'initial.txt'
    path.write_text(f'3\n{NAMES[4]}\n000007\n')
    assert read_initial_file(str(path), NAMES) == [3, 4, 7]
    path.write_text('[1, 1]')
    with pytest.raises(ValueError, match='twice'):
        read_initial_file(str(path), NAMES)
    path.write_text('["nope.jpg"]')
    with pytest.raises(ValueError, match='names no item'):
        read_initial_file(str(path), NAMES)


def test_round_rng_is_reproducible():
    state = PoolState(NAMES, seed=5)
    a = state.round_rng(2).permutation(10)
    b = PoolState(NAMES, seed=5).round_rng(2).permutation(10)
    assert np.array_equal(a, b)


def test_a_round_without_new_items_resumes_but_a_future_label_does_not():
    state = PoolState(['a', 'b', 'c'])
    state.add_round([])  # e.g. a domain-adaptive run's empty initial set
    restored = PoolState(['a', 'b', 'c'])
    restored.load_state_dict(state.state_dict())
    assert restored.round == 0 and restored.num_labeled == 0
    broken = state.state_dict()
    broken['labeled_round'][1] = 3
    with pytest.raises(ValueError, match='inconsistent'):
        restored.load_state_dict(broken)


def test_a_saved_state_of_another_run_differs_from_the_rounds():
    """What a resume compares a checkpoint's pool state with: the dataset,
    the seed, the labeled set and the revealed pixels up to its round."""
    from mmsaal.pool import Reveal
    state = PoolState(NAMES, seed=3, pixels=True)
    state.reveal_round([(0, Reveal((4, 4), 'pixel', [[0, 0]]))])
    saved = dict(state.state_dict(), revealed=state.revealed.digest())
    state.reveal_round([(1, Reveal((4, 4), 'pixel', [[1, 1]]))])
    assert state.differences(saved) == []  # this run, one round later
    assert 'labeled set' in state.differences(
        dict(saved, labeled_round=[0] * len(NAMES)))[0]
    assert 'seed is 4' in state.differences(dict(saved, seed=4))[0]
    assert 'another dataset' in state.differences(
        dict(saved, fingerprint='0' * 16))[0]
    other = PoolState(NAMES, seed=3, pixels=True)
    other.reveal_round([(0, Reveal((4, 4), 'pixel', [[2, 2]]))])
    assert 'revealed pixels differ' in state.differences(
        dict(saved, revealed=other.revealed.digest()))[0]
    assert 'round folders end at round 1' in state.differences(
        dict(saved, round=2))[0]
