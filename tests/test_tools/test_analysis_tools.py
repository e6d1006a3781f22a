"""Round reports, learning-curve plots and the strategy benchmark, on runs
of the real tools over generated data."""
import csv
import json
import os
import os.path as osp

import pytest
from conftest import (DEMO_CONFIG, PYTHONPATH, REPO, quick_options,
                      run_python)

from mmsaal.analysis import area_under_curve


def tool(*args, check=True):
    result = run_python(args[0], args[1:], env={
        'PYTHONPATH': PYTHONPATH, 'PATH': '/usr/bin:/bin'})
    if check and result.returncode:
        raise AssertionError(result.stdout[-3000:] + result.stderr[-5000:])
    return result


@pytest.fixture(scope='module')
def benchmark(voc_shapes, tmp_path_factory):
    """benchmark_al.py over two strategies (one with sampler fields), one
    seed, a short schedule."""
    root = str(tmp_path_factory.mktemp('benchmark'))
    options = [o for o in quick_options(voc_shapes, rounds=1)
               if not o.startswith('active_learning.pool_sampler')]
    result = tool('tools/benchmark_al.py', DEMO_CONFIG, '--strategies',
                  'random', 'entropy:aggregation=sum',
                  '--seeds', '0', '--work-dir', root, '--cfg-options',
                  *options)
    return root, result.stdout


def test_benchmark_prints_the_area_under_the_curve_per_strategy(benchmark):
    root, stdout = benchmark
    assert 'RandomSampler' in stdout and 'EntropySampler' in stdout
    assert 'AULC pascal_voc/mAP' in stdout
    assert 'share of revealed pixels' not in stdout  # image queries
    # The scorers' spread per round is printed; random has no scores.
    spread = stdout.split('scores per query round')[1].splitlines()
    assert spread[1].split() == ['strategy', 'round', '1']
    assert spread[2].split()[0] == 'EntropySampler:aggregation=sum'
    assert 'queried images that held no object' in spread[3]  # no random
    # Detection pools: the share of queried images with nothing to box
    # (the shapes set has no empty image).
    empty = stdout.split('queried images that held no object')[1]
    assert [line.split() for line in empty.splitlines()[1:3]] == [
        ['RandomSampler', '0.0'], ['EntropySampler:aggregation=sum', '0.0']]
    summary = json.load(open(osp.join(root, 'summary.json')))
    assert {row['strategy'] for row in summary} == {
        'RandomSampler', 'EntropySampler:aggregation=sum'}
    # A strategy with fields runs that sampler with them.
    variant = json.load(open(osp.join(root, 'entropy-aggregation=sum_seed0',
                                      'report.json')))
    assert "aggregation='sum'" in variant[-1]['strategy']
    assert osp.getsize(osp.join(root, 'curves.png')) > 1000
    # Running it again reads the finished runs back instead of training.
    again = tool('tools/benchmark_al.py', DEMO_CONFIG, '--strategies',
                 'random', '--seeds', '0', '--work-dir', root)
    assert '[benchmark_al]' not in again.stdout


def test_report_lists_every_round_with_counts_times_and_classes(benchmark):
    root, _ = benchmark
    work_dir = osp.join(root, 'entropy-aggregation=sum_seed0')
    rows = json.load(open(osp.join(work_dir, 'report.json')))
    assert [r['labeled'] for r in rows] == [10, 15]
    assert all(r['metric'] is not None for r in rows)
    assert rows[1]['scoring_seconds'] > 0 and rows[1]['train_seconds'] > 0
    assert sum(rows[1]['queried_classes'].values()) >= 5  # >= 1 object each
    assert rows[1]['score_max'] >= rows[1]['score_mean'] >= rows[1][
        'score_min']
    assert rows[1]['queried_empty'] == 0  # no empty image in this set
    table = open(osp.join(work_dir, 'report.md')).read()
    assert '| round | labeled | fraction | added | pascal_voc/mAP |' in table
    assert table.splitlines()[4].endswith('| queried_classes | queried_empty |')
    assert len(list(csv.reader(open(osp.join(work_dir,
                                              'report.csv'))))) == 3
    scalars_file = next(
        osp.join(folder, 'scalars.json')
        for folder, _, files in os.walk(work_dir) if 'scalars.json' in files)
    scalars = [json.loads(line) for line in open(scalars_file)]
    assert any('active_learning/labeled' in s for s in scalars)


def test_plot_tool_writes_png_and_csv(benchmark, tmp_path):
    root, _ = benchmark
    out = str(tmp_path / 'curves.png')
    result = tool('tools/analysis_tools/plot_al_curves.py',
                  osp.join(root, 'random_seed0'),
                  osp.join(root, 'entropy-aggregation=sum_seed0'), '--out',
                  out)
    assert 'RandomSampler' in result.stdout
    rows = list(csv.DictReader(open(str(tmp_path / 'curves.csv'))))
    assert len(rows) == 4 and {r['round'] for r in rows} == {'0', '1'}


def test_plot_tool_names_a_work_dir_without_rounds(tmp_path):
    result = tool('tools/analysis_tools/plot_al_curves.py', str(tmp_path),
                  check=False)
    assert result.returncode != 0
    assert 'has no report.json' in result.stderr


def test_area_under_curve_is_the_mean_metric_over_the_budget():
    assert area_under_curve([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]) == \
        pytest.approx(0.5)
    assert area_under_curve([0.0, 1.0], [0.0, 1.0]) == pytest.approx(0.5)


def test_browse_queries_draws_the_round_with_the_model_that_scored_it(
        benchmark, tmp_path):
    root, _ = benchmark
    work_dir = osp.join(root, 'entropy-aggregation=sum_seed0')
    out = str(tmp_path / 'sheet.png')
    result = tool('tools/analysis_tools/browse_queries.py', work_dir,
                  '--round', '1', '--out', out)
    assert 'was not kept' not in result.stdout
    assert '5 images queried in round 1' in result.stdout
    import cv2
    sheet = cv2.imread(out)
    assert sheet.shape[0] >= 256 and sheet.shape[1] == 4 * 256
    missing = tool('tools/analysis_tools/browse_queries.py', work_dir,
                   '--round', '7', check=False)
    assert missing.returncode != 0
    assert 'round 7 does not exist' in missing.stderr
    assert 'its rounds are [0, 1]' in missing.stderr


def test_segmentation_runs_report_curves_and_outlined_regions(
        street_domains, tmp_path):
    import cv2
    import numpy as np
    from conftest import SEG_DEMO_CONFIG, run_train_al, seg_quick_options
    from mmsaal.analysis import load_curve
    work_dir = str(tmp_path / 'seg')
    run_train_al(work_dir,
                 seg_quick_options(street_domains, rounds=1,
                                   sampler='EntropySampler'),
                 config=SEG_DEMO_CONFIG)
    curve = load_curve(work_dir)
    assert curve['metric_name'] == 'mIoU'
    # The x axis is the share of target pixels labeled, not of images.
    assert curve['fraction'][0] == 0.0 and 0 < curve['fraction'][1] < 0.1
    out = str(tmp_path / 'sheet.png')
    result = tool('tools/analysis_tools/browse_queries.py', work_dir,
                  '--round', '1', '--out', out, '--max-images', '4')
    assert '16 images queried in round 1' in result.stdout
    sheet = cv2.imread(out)[..., ::-1].astype(int)
    yellow = (np.abs(sheet - [255, 220, 0]).sum(-1) < 60).sum()
    assert yellow > 4 * 20  # the frames of the queried regions
    nothing = tool('tools/analysis_tools/browse_queries.py', work_dir,
                   '--round', '0', check=False)
    assert nothing.returncode != 0 and 'queried nothing' in nothing.stderr


def test_reveal_shares_count_classes_and_void_per_strategy(tmp_path):
    """What region runs revealed: each class's pixels from the round
    reports, void the revealed pixels of no class; round 0 never counts."""
    import numpy as np

    from mmsaal.analysis import (format_reveal_shares, reveal_shares,
                                 revealed_classes)
    from mmsaal.pool import Reveal, save_reveals

    def run(name, per_round):
        work_dir = tmp_path / name
        rows = [dict(round=0, queried_classes=None)]
        for round_idx, (classes, revealed) in enumerate(per_round, 1):
            folder = work_dir / 'rounds' / f'round_{round_idx:02d}'
            folder.mkdir(parents=True)
            mask = np.zeros((4, 8), bool)
            mask.flat[:revealed] = True
            save_reveals(str(folder / 'revealed.npz'),
                         [(0, Reveal((4, 8), 'pixel', np.argwhere(mask)))])
            rows.append(dict(round=round_idx, queried_classes=classes))
        (work_dir / 'rounds' / 'round_00').mkdir(parents=True)
        json.dump(rows, open(work_dir / 'report.json', 'w'))
        return str(work_dir)

    first = run('a', [(dict(road=6, sky=2), 10), (dict(road=4), 4)])
    second = run('b', [(dict(car=4), 8)])
    assert revealed_classes(first) == dict(road=10, sky=2, void=2)
    shares = reveal_shares([dict(strategy='S', work_dir=first),
                            dict(strategy='S', work_dir=second)])
    assert shares['S'] == pytest.approx(
        dict(car=100 * 4 / 22, road=100 * 10 / 22, sky=100 * 2 / 22,
             void=100 * 6 / 22))
    table = format_reveal_shares(shares)
    assert table.splitlines()[1].split() == ['strategy', 'car', 'road',
                                             'sky', 'void']
    assert table.splitlines()[2].split()[-1] == f'{100 * 6 / 22:.1f}'


def test_empty_images_are_counted_per_query_and_shared_per_strategy(
        tmp_path):
    """A detection query's images with no object: counted from the parsed
    annotations, None for a pool without instance annotations, and shared
    over a strategy's query rounds (round 0, the initial set, left out)."""
    from mmsaal.analysis import empty_query_shares, format_empty_query_shares
    from mmsaal.rounds.record import empty_images

    class Pool:
        def __init__(self, infos):
            self.infos = infos

        def get_data_info(self, index):
            return self.infos[index]

    detection = Pool([dict(instances=[]), dict(instances=[dict(
        bbox_label=0)]), dict(instances=[])])
    assert empty_images(detection, [0, 1, 2]) == 2
    assert empty_images(detection, [1]) == 0
    assert empty_images(Pool([dict(seg_map_path='a.png')]), [0]) is None

    def run(name, rounds):
        rows = [dict(round=0, added=10, queried_empty=9)] + [
            dict(round=i, added=added, queried_empty=empty)
            for i, (added, empty) in enumerate(rounds, 1)]
        (tmp_path / name).mkdir()
        json.dump(rows, open(tmp_path / name / 'report.json', 'w'))
        return dict(strategy=name[:-1], work_dir=str(tmp_path / name))

    shares = empty_query_shares([run('lc0', [(5, 2), (5, 3)]),
                                 run('lc1', [(10, 0)]),
                                 run('saal0', [(5, 0)])])
    assert shares == dict(lc=25.0, saal=0.0)
    assert format_empty_query_shares(shares).splitlines()[1].split() == [
        'lc', '25.0']


def test_score_spread_averages_each_rounds_mean_and_std_over_seeds(
        tmp_path):
    """The saturation check a benchmark prints: per strategy and query
    round, the seeds' mean score, std and std / mean; unscored rounds (the
    initial set, random queries) are not rows."""
    from mmsaal.analysis import format_score_spread, score_spread

    def run(name, stats):
        rows = [dict(round=0)] + [
            dict(round=i, score_mean=m, score_std=s)
            for i, (m, s) in enumerate(stats, 1)]
        (tmp_path / name).mkdir()
        json.dump(rows, open(tmp_path / name / 'report.json', 'w'))
        return dict(strategy=name.rstrip('01'), work_dir=str(tmp_path / name))

    spread = score_spread([
        run('saal0', [(2.0, 0.2), (1.0, 0.01)]),
        run('saal1', [(4.0, 0.6), (3.0, 0.03)]),
        run('random0', [])])
    assert list(spread) == ['saal']
    assert spread['saal'] == [
        dict(round=1, mean=3.0, std=pytest.approx(0.4),
             relative=pytest.approx(0.4 / 3)),
        dict(round=2, mean=2.0, std=pytest.approx(0.02),
             relative=pytest.approx(0.01))]
    table = format_score_spread(spread).splitlines()
    assert table[1].split() == ['strategy', 'round', '1', 'round', '2']
    assert table[2].split() == ['saal', '3', '/', '0.4', '(0.13)', '2', '/',
                                '0.02', '(0.01)']


def test_a_cold_started_run_is_named_and_spread_by_its_pool_sampler(
        tmp_path):
    """cold_start_rounds: the run is its pool sampler's, named with the
    field, and the random rounds' noise scores are not in its spread."""
    from mmsaal.analysis import run_strategy, score_spread
    rows = [dict(round=0, strategy='initial'),
            dict(round=1, strategy='RandomSampler(seed=0)', score_mean=0.5,
                 score_std=0.3),
            dict(round=2, strategy='SAALSampler(rho=0.05)', score_mean=2.0,
                 score_std=0.2),
            dict(round=3, strategy='SAALSampler(rho=0.05)', score_mean=1.0,
                 score_std=0.1)]
    assert run_strategy(rows) == 'SAALSampler:cold_start_rounds=1'
    assert run_strategy(rows[:1] + rows[2:]) == 'SAALSampler'
    assert run_strategy(rows[:2]) == 'RandomSampler'
    assert run_strategy(rows[:1]) == 'initial only'
    json.dump(rows, open(tmp_path / 'report.json', 'w'))
    spread = score_spread([dict(strategy='S', work_dir=str(tmp_path))])
    assert [r['round'] for r in spread['S']] == [2, 3]


def test_benchmark_strategies_keep_the_configs_own_sampler_fields():
    """`saal` on a config whose SAALSampler has fields runs those fields
    (the config's default is what a benchmark of it must measure); another
    sampler starts from its own defaults, not the SAAL fields."""
    import importlib.util
    from conftest import SEG_DEMO_CONFIG
    spec = importlib.util.spec_from_file_location(
        'benchmark_al', osp.join(REPO, 'tools', 'benchmark_al.py'))
    tool_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool_module)
    from mmengine.config import Config
    own = tool_module.config_sampler(SEG_DEMO_CONFIG, [])
    assert own == 'SAALSampler'
    key = 'active_learning.pool_sampler'
    for strategy, expected in [
        ('saal', dict(type='SAALSampler', impurity_radius=1,
                      diversity='classes')),
        ('saal:impurity_radius=None,diversity=False',
         dict(type='SAALSampler', impurity_radius=None, diversity=False)),
        ('ripu:radius=2', dict(type='RIPUSampler', radius=2)),
        ('random', dict(type='RandomSampler')),
    ]:
        cfg = Config.fromfile(SEG_DEMO_CONFIG)
        options = tool_module.sampler_options(strategy, own)
        cfg.merge_from_dict(tool_module.parse_cfg_options(options))
        assert cfg.active_learning.pool_sampler == expected, strategy
    assert tool_module.config_sampler(
        SEG_DEMO_CONFIG, [f'{key}=RIPUSampler']) == 'RIPUSampler'
