"""What keeps the rounds fast at real pool sizes: a rank sends only what
a round can pick, a resume writes only the masks a kill left unwritten,
pool items are read in one pass, and the scale simulator runs."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import REPO, run_python
from mmsaal.pool import PixelLabels, PoolState
from mmsaal.rounds import PixelUnits, pick_units
from mmsaal.rounds.pool_dataset import relative_names
from mmsaal.rounds.score import trim_results
from test_regions import MapSampler

SIM = osp.join(REPO, 'tools', 'misc', 'scale_sim.py')


def ranked(units, sampler, state, candidates):
    """What each candidate's scoring gives, as one rank would."""
    budget = units.round_budget(state, candidates)
    units.prepare(sampler, state, budget)
    batch = dict(data_samples=[
        type('S', (), dict(img_path=units.pixels.paths[i]))
        for i in candidates])
    return budget, units.score_batch(sampler, None, batch)


@pytest.mark.parametrize('granularity', ['region', 'pixel'])
@pytest.mark.parametrize('diversity', [False, True])
def test_a_rank_sends_only_what_a_pool_wide_round_can_pick(
        tmp_path, granularity, diversity):
    """Pool-wide, each rank keeps only the units at least as good as its
    own best `need` (the budget, 4x with diversity): the round picks the
    same units from what two ranks send as from everything, and each rank
    sends far less than it ranked."""
    rng = np.random.default_rng(0)
    shapes = [(24, 32)] * 8
    paths = [f'{i}.png' for i in range(8)]
    maps = {p: torch.from_numpy(rng.random(s)).float()
            for p, s in zip(paths, shapes)}
    sampler = MapSampler(maps, diversity=diversity)
    units = PixelUnits(granularity, 4, False, 0.05,
                       PixelLabels(paths, str(tmp_path), shapes))
    state = PoolState(paths, pixels=True)
    candidates = units.candidates(state)
    budget, everything = ranked(units, sampler, state, candidates)
    whole = units.table(candidates, everything)
    expected = pick_units(sampler, whole, budget, np.random.default_rng(1))
    # Two ranks, each scoring every other image (as make_batches shards).
    local = {b: [r] for b, r in enumerate(everything)}
    sent = {}
    for rank in (0, 1):
        mine = {b: v for b, v in local.items() if b % 2 == rank}
        sent.update(trim_results(mine, units.trim))
    gathered = [sent[b][0] for b in range(len(candidates))]
    table = units.table(candidates, gathered)
    picked = pick_units(sampler, table, budget, np.random.default_rng(1))
    assert len(table) < len(whole)
    factor = 4 if diversity else 1
    assert sum(len(r['scores']) for r in gathered) <= \
        2 * factor * budget.total + 2
    got = units.query(table, picked, {}).units
    want = units.query(whole, expected, {}).units
    assert sorted(got) == sorted(want)
    for i in want:
        assert got[i]['corners'].tolist() == want[i]['corners'].tolist()


@pytest.mark.parametrize('granularity', ['region', 'pixel'])
@pytest.mark.parametrize('per_image', [False, True])
def test_a_batch_ranks_in_threads_and_the_round_picks_the_same(
        tmp_path, granularity, per_image):
    """The images of a batch rank side by side on torch's threads, each
    above the floor the batch started with: the round picks what it picks
    when they rank one by one, each above the floor of those before."""
    rng = np.random.default_rng(3)
    shapes = [(24, 32), (20, 36), (24, 32), (28, 24)] * 3
    paths = [f'{i}.png' for i in range(len(shapes))]
    maps = {p: torch.from_numpy(rng.random(s) ** 3).float()
            for p, s in zip(paths, shapes)}
    sampler = MapSampler(maps, diversity=False)

    def picks(batch_size: int, threads: int):
        units = PixelUnits(granularity, 4, per_image, 0.05,
                           PixelLabels(paths, str(tmp_path), shapes))
        state = PoolState(paths, pixels=True)
        candidates = units.candidates(state)
        budget = units.round_budget(state, candidates)
        units.prepare(sampler, state, budget)
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            scored = []
            for start in range(0, len(candidates), batch_size):
                batch = dict(data_samples=[
                    type('S', (), dict(img_path=paths[i]))
                    for i in candidates[start:start + batch_size]])
                scored += units.score_batch(sampler, None, batch)
        finally:
            torch.set_num_threads(before)
        table = units.table(candidates, scored)
        picked = pick_units(sampler, table, budget, np.random.default_rng(1))
        query = units.query(table, picked, {}).units
        return {i: (u['corners'].tolist(), u['scores'].tolist())
                for i, u in query.items()}, sum(len(r['scores'])
                                                 for r in scored)

    one_by_one, ranked_alone = picks(1, 1)
    in_threads, ranked_together = picks(6, 2)
    assert in_threads == one_by_one
    if per_image:
        assert ranked_together == ranked_alone
    else:  # the batch's floor is lower: it may rank further down
        assert ranked_together >= ranked_alone


@pytest.mark.parametrize('per_image', [True, False])
def test_ranking_beside_the_scoring_picks_what_ranking_in_turn_picks(
        tmp_path, per_image):
    """A round ranks each batch's maps in a thread of its own while the
    next batches are scored (``score_candidates(finish=...)``): in batch
    order, never more than FINISH_AHEAD batches behind, with what ranking
    right after each batch gives (floors included); an error in the
    ranking reaches the round."""
    import threading

    from mmsaal.rounds import score as score_module
    from mmsaal.rounds.score import score_candidates
    rng = np.random.default_rng(5)
    shapes = [(24, 32), (20, 36)] * 6
    paths = [f'{i}.png' for i in range(len(shapes))]
    maps = {p: torch.from_numpy(rng.random(s) ** 3).float()
            for p, s in zip(paths, shapes)}
    sampler = MapSampler(maps, diversity=False)

    class Pool:

        def __len__(self):
            return len(paths)

        def __getitem__(self, index):
            return dict(data_samples=type('S', (), dict(
                img_path=paths[index])))

    def collate(items):
        return dict(data_samples=[item['data_samples'] for item in items])

    def ranked(finish_beside: bool):
        units = PixelUnits('region', 4, per_image, 0.05,
                           PixelLabels(paths, str(tmp_path), shapes))
        state = PoolState(paths, pixels=True)
        candidates = units.candidates(state)
        units.prepare(sampler, state, units.round_budget(state, candidates))
        events, behind = [], []
        finish = units.finish_batch

        def start(batch):
            events.append(('start', batch['data_samples'][0].img_path))
            return units.start_batch(sampler, None, batch)

        def finish_logged(started):
            behind.append(sum(e == 'start' for e, _ in events) -
                          sum(e == 'finish' for e, _ in events))
            events.append(('finish', threading.current_thread().name))
            return finish(started)

        if finish_beside:
            scored = score_candidates(start, Pool(), candidates, 2,
                                      collate_fn=collate, as_floats=False,
                                      trim=units.trim, finish=finish_logged)
        else:
            scored = score_candidates(
                lambda b: units.score_batch(sampler, None, b), Pool(),
                candidates, 2, collate_fn=collate, as_floats=False,
                trim=units.trim)
        return [(r['corners'].tolist(), r['scores'].tolist())
                for r in scored], events, behind

    alone, _, _ = ranked(False)
    beside, events, behind = ranked(True)
    assert beside == alone
    assert {name for e, name in events if e == 'finish'} == {
        'mmsaal-finish_0'}
    assert max(behind) <= score_module.FINISH_AHEAD + 1

    def broken(started):
        raise RuntimeError('ranking failed')

    with pytest.raises(RuntimeError, match='ranking failed'):
        score_candidates(lambda b: b, Pool(), list(range(4)), 2,
                         collate_fn=collate, as_floats=False, finish=broken)


def test_a_resume_writes_only_the_masks_a_kill_left_unwritten(tmp_path):
    shapes = [(16, 16)] * 5
    paths = [f'img{i}.png' for i in range(5)]
    labels = PixelLabels(paths, str(tmp_path / 'revealed'), shapes)
    state = PoolState(paths, pixels=True)
    state.reveal_round(labels.whole([0, 1]))
    labels.export(state)
    record = osp.join(labels.mask_dir, labels.EXPORTED)
    assert json.load(open(record)) == dict(round=0)
    assert labels.export_missing(state) == 0  # all written already
    # Round 1 reveals images 2 and 3; a kill leaves its export undone.
    state.reveal_round(labels.whole([2, 3]))
    assert labels.export_missing(state) == 2
    assert sorted(os.listdir(labels.mask_dir)) == [
        labels.EXPORTED] + [f'img{i}.png' for i in range(4)]
    # A mask removed by hand is written again; a stray one (of a pool
    # image nothing revealed) stays until a full export (no record)
    # removes it. A file that is no pool image's mask is never removed.
    os.remove(labels.mask_path(1))
    assert labels.export_missing(state) == 1
    open(labels.mask_path(4), 'w').close()
    open(osp.join(labels.mask_dir, 'notes.txt'), 'w').close()
    os.remove(record)
    assert labels.export_missing(state) == 4
    assert sorted(os.listdir(labels.mask_dir)) == [
        labels.EXPORTED] + [f'img{i}.png' for i in range(4)] + ['notes.txt']
    # The masks are what LoadRevealedAnnotations reads: 1-bit PNGs.
    from PIL import Image
    with Image.open(labels.mask_path(2)) as image:
        assert image.mode == '1' and np.asarray(image).all()


@pytest.mark.parametrize('paths', [
    ['a/b/c.jpg', 'a/b/d.jpg'], ['a/bc/x.jpg', 'a/bd/y.jpg'],
    ['/data/x.jpg', '/data/y.jpg'], ['/x.jpg', '/y.jpg'],
    ['a/./b.jpg', 'a/c.jpg'], ['a//b.jpg', 'a/c.jpg'], ['a/b.jpg', 'a/b.jpg'],
    ['x.jpg', 'y.jpg'], ['d/a/1.png', 'd/b/2.png', 'd/a/3.png'],
    ['../d/a.png', '../d/b.png'], ['./a/b.png', './a/c.png']])
def test_item_names_are_the_paths_relative_to_their_common_folder(paths):
    """Cut without a relpath call per item, and the same names (the pool's
    fingerprint) as osp.relpath to osp.commonpath."""
    if all(osp.sep in p for p in paths):
        common = osp.commonpath(paths)
        expected = [osp.relpath(p, common) for p in paths]
    else:
        expected = [osp.basename(p) for p in paths]
    assert relative_names(paths) == expected


def test_item_infos_come_in_one_pass_without_copies():
    """A BaseDataset is read from its serialized list, as get_data_info
    reads it; labels are checked on disk when first asked for."""
    from mmengine.dataset import BaseDataset

    from mmsaal.rounds.pool_dataset import PoolItems, data_infos

    class Items(BaseDataset):

        def load_data_list(self):
            return [dict(img_path=f'd/{i}.jpg', xml_path=__file__ if i % 2
                         else '/nonexistent.xml') for i in range(5)]

    for serialize in (True, False):
        dataset = Items(ann_file='', serialize_data=serialize)
        infos = list(data_infos(dataset))
        assert [i['img_path'] for i in infos] == [
            dataset.get_data_info(k)['img_path'] for k in range(5)]
        items = PoolItems.of(dataset)
        assert items.names == [f'{i}.jpg' for i in range(5)]
        assert items.labeled.tolist() == [False, True, False, True, False]


@pytest.mark.parametrize('task', [
    ['images', '--pool', '3000', '--diversity', 'scores'],
    ['segmentation', '--images', '6', '--size', '64', '128',
     '--region-size', '8', '--budget', '0.05'],
    ['segmentation', '--images', '6', '--size', '64', '128',
     '--granularity', 'pixel', '--pool-wide', '--diversity', 'classes'],
])
def test_the_scale_simulator_runs_at_a_small_size(tmp_path, task):
    result = run_python(SIM, [*task, '--rounds', '2', '--data',
                              tmp_path / 'data', '--work-dir',
                              tmp_path / 'work'], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for row in ('| start |', '| round 1 |', '| round 2 |', '| resume |'):
        assert row in out, out[-2000:]
    assert 'rank 0 sends' in out and 'rounds/ holds' in out


def test_the_scale_simulator_takes_a_shipped_configs_settings(tmp_path):
    """``--config``: the region config's own round settings (classes
    diversity, a loader of batch 1 whose workers are lowered to the
    cores), with its loader's workers really started; options after it
    win."""
    config = 'configs/saal_deeplabv3plus_r101_gta2cityscapes.py'
    result = run_python(SIM, [
        'segmentation', '--images', '4', '--size', '64', '128', '--config',
        config, '--region-size', '8', '--rounds', '1', '--data',
        tmp_path / 'data', '--work-dir', tmp_path / 'work'], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    workers = min(4, len(os.sched_getaffinity(0)))
    assert (f'region (8px) at 0.01 a round, per image, diversity=classes, '
            f'subset=None, noise maps, batch_size=1, num_workers={workers}, '
            f'as {config}') in result.stdout
    assert '| resume |' in result.stdout
    refused = run_python(SIM, ['images', '--config', config], timeout=300)
    assert refused.returncode != 0 and 'with the task segmentation' in \
        refused.stderr


def test_classes_are_counted_beside_training_and_again_after_a_kill(
        tmp_path):
    """A segmentation round's class histogram (every queried label map
    decoded) is counted in a thread after the round is written: it lands in
    classes.json and the report, never in queried.json; a kill before it
    leaves the round without one, and the resume counts it again."""
    import cv2

    from mmsaal.pool import RoundStore
    from mmsaal.rounds import Query, RoundRecorder
    from mmsaal.pool.store import CLASSES_FILE
    from mmsaal.rounds.record import pixel_class_histogram
    rng = np.random.default_rng(0)
    label_paths = []
    for i in range(4):
        labels = rng.integers(0, 3, (16, 16)).astype(np.uint8)
        labels[0] = 255  # ignored
        label_paths.append(str(tmp_path / f'{i}_labelTrainIds.png'))
        cv2.imwrite(label_paths[-1], labels)

    class Pool:
        metainfo = dict(classes=('road', 'car', 'sky'))

        def __len__(self):
            return 4

        def get_data_info(self, index):
            return dict(img_path=f'{index}.png',
                        seg_map_path=label_paths[index])

    pool, work = Pool(), tmp_path / 'work'
    names = [f'{i}.png' for i in range(4)]
    store = RoundStore(str(work / 'rounds'))
    units = PixelUnits('region', 4, True, 0.1,
                       PixelLabels(names, store.mask_dir, [(16, 16)] * 4))
    state = PoolState(names, pixels=True)

    def recorder():
        return RoundRecorder(store, state, units, pool, str(work), 'unit')

    first = recorder()
    initial = Query(np.asarray([0]))
    units.reveal(state, initial)
    first.save_round(initial, dict(strategy='initial'), initial=True)
    query = Query(
        np.asarray([1, 3]), {1: 0.5, 3: 0.25}, dict(strategy='S'),
        units={1: dict(corners=np.array([[0, 0], [8, 8]]),
                       scores=np.array([0.5, 0.4])),
               3: dict(corners=np.array([[4, 4]]), scores=np.array([0.25]))})
    units.reveal(state, query)
    first.save_round(query, query.info)
    first.wait()
    expected = pixel_class_histogram(pool, units.reveals(query))
    assert sum(expected.values()) == 3 * 16 - 4  # row 0 ignored
    folder = store.round_dir(1)
    classes = osp.join(folder, CLASSES_FILE)
    assert json.load(open(classes)) == dict(queried_classes=expected)
    assert 'queried_classes' not in json.load(
        open(osp.join(folder, 'queried.json')))
    report = work / 'report.json'
    rows = json.load(open(report))
    assert rows[1]['queried_classes'] == expected
    assert rows[0]['queried_classes'] is None  # round 0 counts none
    # Killed before the count: no classes.json, a report without them.
    os.remove(classes)
    rows[1]['queried_classes'] = None
    report.write_text(json.dumps(rows))
    resumed = recorder()
    assert resumed.count_missing_classes() == [1]
    resumed.wait()
    assert json.load(open(classes)) == dict(queried_classes=expected)
    assert json.load(open(report))[1]['queried_classes'] == expected
    assert resumed.count_missing_classes() == []
