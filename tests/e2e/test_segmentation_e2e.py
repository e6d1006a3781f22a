"""End-to-end domain-adaptive segmentation: the real tools/train_al.py on
the generated GTA5/Cityscapes-layout set, target labeled region by region."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
from conftest import (SEG_DEMO_CONFIG, kill_when_round_written, run_train_al,
                      seg_quick_options)

from mmsaal.pool import load_reveals

IMAGE_PIXELS = 48 * 96
NUM_TARGET = 16


def replay(work_dir):
    """{round: {image: mask}} read back from the round folders, where each
    mask holds round + 1 at the pixels that round revealed, 0 elsewhere."""
    states, current = {}, {}
    rounds = sorted(glob.glob(osp.join(work_dir, 'rounds', 'round_*')))
    for round_idx, folder in enumerate(rounds):
        for index, reveal in load_reveals(osp.join(folder,
                                                   'revealed.npz')):
            mask = reveal.mask()
            codes = current.setdefault(index, np.zeros(mask.shape, np.uint8))
            assert not (codes[mask] > 0).any()  # never revealed twice
            codes[mask] = round_idx + 1
        states[round_idx] = {i: m.copy() for i, m in current.items()}
    return states


def test_region_queries_reveal_exactly_the_budget_per_image(
        street_domains, tmp_path):
    work_dir = str(tmp_path / 'run')
    result = run_train_al(
        work_dir,
        seg_quick_options(street_domains, sampler='SAALSampler',
                          budget=0.05, cold_start_rounds=1),
        config=SEG_DEMO_CONFIG)
    states = replay(work_dir)
    assert sorted(states) == [0, 1, 2]
    assert states[0] == {}  # the target starts unlabeled
    per_round = int(0.05 * IMAGE_PIXELS // 64) * 64  # 8x8 regions
    for round_idx in (1, 2):
        masks = states[round_idx]
        assert sorted(masks) == list(range(NUM_TARGET))
        for mask in masks.values():
            assert ((mask > 0) & (mask <= round_idx + 1)).sum() == \
                per_round * round_idx
            assert (mask == round_idx + 1).sum() == per_round
        regions = json.load(open(osp.join(
            work_dir, 'rounds', f'round_{round_idx:02d}', 'regions.json')))
        assert len(regions['items']) == NUM_TARGET
        for item in regions['items']:
            assert len(item['regions']) == per_round // 64
            assert item['scores'] == sorted(item['scores'], reverse=True)
    # The exported masks are what the training pipeline reads.
    exported = sorted(glob.glob(osp.join(work_dir, 'rounds', 'revealed',
                                         '*.png')))
    assert len(exported) == NUM_TARGET
    assert all(
        (cv2.imread(p, cv2.IMREAD_UNCHANGED) > 0).sum() == 2 * per_round
        for p in exported)
    metrics = json.load(open(osp.join(work_dir, 'rounds', 'round_02',
                                      'metrics.json')))
    assert 'mIoU' in metrics['metrics']
    assert abs(metrics['labeled_pixel_fraction'] -
               2 * per_round / IMAGE_PIXELS) < 1e-6
    report = open(osp.join(work_dir, 'report.md')).read()
    assert 'pixel_fraction' in report
    # cold_start_rounds=1: round 1 at random, then the pool sampler.
    assert 'Strategies: `RandomSampler(diversity=False, seed=0)` (round 1), ' \
        '`SAALSampler(' in report
    # Classes of the pixels each round revealed (the ego band is ignored).
    rows = json.load(open(osp.join(work_dir, 'report.json')))
    for row in rows[1:]:
        classes = row['queried_classes']
        assert set(classes) <= {'road', 'sidewalk', 'building',
                                'vegetation', 'sky', 'car'}
        assert 0.8 * NUM_TARGET * per_round <= sum(classes.values()) <= \
            NUM_TARGET * per_round
    assert 'pixel fraction' in result.stdout + result.stderr


def test_pool_wide_pixel_queries_spend_the_whole_budget(street_domains,
                                                        tmp_path):
    work_dir = str(tmp_path / 'run')
    run_train_al(
        work_dir,
        seg_quick_options(street_domains, rounds=1, sampler='RIPUSampler',
                          granularity='pixel', budget=0.01) +
        ['active_learning.budget_per_image=False'], config=SEG_DEMO_CONFIG)
    masks = replay(work_dir)[1]
    assert sum(int((m > 0).sum()) for m in masks.values()) == int(
        0.01 * NUM_TARGET * IMAGE_PIXELS)
    queried = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'queried.json')))
    assert 'RIPUSampler' in queried['strategy']


def test_resume_after_sigkill_keeps_every_revealed_pixel(street_domains,
                                                         tmp_path):
    options = seg_quick_options(street_domains, rounds=2)
    reference = str(tmp_path / 'reference')
    run_train_al(reference, options, config=SEG_DEMO_CONFIG)

    work_dir = str(tmp_path / 'killed')
    kill_when_round_written(work_dir, options, SEG_DEMO_CONFIG)
    killed_at = replay(work_dir)
    assert sorted(killed_at) == [0, 1]
    run_train_al(work_dir, options, config=SEG_DEMO_CONFIG,
                 extra=['--resume'])
    final, expected = replay(work_dir), replay(reference)
    assert sorted(final) == sorted(expected) == [0, 1, 2]
    for index, mask in killed_at[1].items():
        np.testing.assert_array_equal(final[1][index], mask)
    for index in expected[2]:
        np.testing.assert_array_equal(final[2][index], expected[2][index])


def test_image_queries_on_a_pixel_labeled_target_reveal_whole_images(
        street_domains, tmp_path):
    """granularity='image' on the domain-adaptive config: the target reads
    its labels through LoadRevealedAnnotations, so a queried image is
    revealed whole (it used to stop at round 1 with no mask to read), with
    diversity on."""
    work_dir = str(tmp_path / 'run')
    options = [  # the demo's SAALSampler, with diversity
        o for o in seg_quick_options(street_domains, granularity='image')
        if not o.startswith('active_learning.pool_sampler=')
    ]
    run_train_al(
        work_dir, options + ['active_learning.budget=3',
                             'active_learning.pool_sampler.diversity=True'],
        config=SEG_DEMO_CONFIG)
    states = replay(work_dir)
    assert sorted(states) == [0, 1, 2]
    assert states[0] == {}
    for round_idx in (1, 2):
        masks = states[round_idx]
        assert len(masks) == 3 * round_idx
        assert all(mask.all() for mask in masks.values())
        labeled = json.load(open(osp.join(
            work_dir, 'rounds', f'round_{round_idx:02d}', 'labeled.json')))
        assert sorted(i['index'] for i in labeled['items']) == sorted(masks)
        queried = json.load(open(osp.join(
            work_dir, 'rounds', f'round_{round_idx:02d}', 'queried.json')))
        assert queried['pixels_revealed'] == 3 * IMAGE_PIXELS
        assert 'diversity=True' in queried['strategy']
    exported = glob.glob(osp.join(work_dir, 'rounds', 'revealed', '*.png'))
    assert len(exported) == 6
    for path in exported:
        assert cv2.imread(path, cv2.IMREAD_UNCHANGED).all()


def test_region_queries_need_a_pipeline_that_reads_revealed_masks(
        street_domains, tmp_path):
    """Otherwise training would read whole label maps: refused, with the
    field and the fix named, before anything is labeled."""
    work_dir = tmp_path / 'run'
    result = run_train_al(
        str(work_dir),
        seg_quick_options(street_domains) +
        ['train_dataloader.dataset.datasets.1.pipeline.1.type='
         'LoadAnnotations'],
        config=SEG_DEMO_CONFIG, check=False)
    assert result.returncode != 0
    assert "granularity='region' reveals pixels" in result.stderr
    assert 'LoadRevealedAnnotations' in result.stderr
    assert not (work_dir / 'rounds').exists()
