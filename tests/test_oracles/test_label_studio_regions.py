"""Region queries labeled in a real Label Studio server (see
test_label_studio.py): a polygon inside each queried region, two rounds,
a kill during the pull."""
import glob
import json
import os
import os.path as osp
import shutil
import signal
import sys

import cv2
import numpy as np
from conftest import (PYTHONPATH, SEG_DEMO_CONFIG, run_command, run_train_al,
                      seg_quick_options, train_al_command)
from test_label_studio import (Annotator, ls_config, output,  # noqa: F401
                               server, token_env)


def label_maps(root):
    return sorted(glob.glob(osp.join(root, 'cityscapes', 'gtFine', 'train',
                                     '*', '*_labelTrainIds.png')))


def test_segmentation_regions_through_label_studio(street_domains, server,
                                                   tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(street_domains, root)
    truth = {}
    for path in label_maps(root):
        truth[path] = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        os.remove(path)
    config = ls_config(tmp_path, SEG_DEMO_CONFIG, server, 'streets')
    work_dir = str(tmp_path / 'run')
    options = seg_quick_options(str(root), rounds=2)
    env = token_env(server)
    first = run_train_al(work_dir, options, config=config, env=env)
    assert 'waits for labels in Label Studio' in output(first)
    annotator = Annotator(server)
    project = annotator.project('streets')
    expected = {}

    def paint_round(round_idx):
        """A brush stroke inside each queried region: a polygon of its
        inner pixels in the region's main class."""
        regions = json.load(open(osp.join(
            work_dir, 'rounds', f'query_{round_idx:02d}',
            'regions.json')))['items']
        by_name = {item['name']: item['regions'] for item in regions}
        classes = [c['name'] for c in json.load(open(osp.join(
            work_dir, 'rounds', f'query_{round_idx:02d}',
            'query.json')))['categories']]
        tasks = annotator.tasks(
            project, where=lambda data: data['mmsaal_round'] == round_idx)
        assert len(tasks) == len(regions)
        for task in tasks:
            name = task['data']['mmsaal_path']
            target = [p for p in truth if osp.basename(p).replace(
                '_gtFine_labelTrainIds.png', '') in name][0]
            shown = [r for r in task['predictions'][0]['result']
                     if r['from_name'] == 'queried']
            assert len(shown) == len(by_name[name])
            h, w = truth[target].shape
            painted = expected.setdefault(
                target, np.full((h, w), 255, np.uint8))
            result = []
            for y, x, rh, rw in by_name[name]:
                y0, x0, y1, x1 = y + 1, x + 1, y + rh - 2, x + rw - 2
                window = truth[target][y:y + rh, x:x + rw]
                known = window[window != 255]  # 255: nothing to name
                label = int(np.bincount(known).argmax()) if known.size \
                    else 0
                painted[y0:y1 + 1, x0:x1 + 1] = label
                points = [[100 * (px + 0.5) / w, 100 * (py + 0.5) / h]
                          for px, py in ((x0, y0), (x1, y0), (x1, y1),
                                         (x0, y1))]
                result.append(dict(
                    from_name='label', to_name='image',
                    type='polygonlabels', original_width=w,
                    original_height=h, value=dict(
                        points=points, closed=True,
                        polygonlabels=[classes[label]])))
            annotator.submit(task, result)
        return regions

    regions = paint_round(1)
    # Killed while the label maps are written: the resume writes the same.
    killed = run_command(
        [sys.executable, '-m', 'mmsaal.testing.kill_switch', '--at',
         'label_write:2'] + train_al_command(work_dir, options, config,
                                             ['--resume'])[1:],
        env=dict(env, PYTHONPATH=PYTHONPATH))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert len(label_maps(root)) >= 1
    second = run_train_al(work_dir, options, config=config, env=env,
                          extra=['--resume'])
    assert 'waits for labels in Label Studio' in output(second)
    revealed = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                       'regions.json')))['items']
    assert revealed == regions
    for target, painted in expected.items():
        assert np.array_equal(cv2.imread(target, cv2.IMREAD_UNCHANGED),
                              painted), target
    after_round_1 = {t: p.copy() for t, p in expected.items()}
    second_round = paint_round(2)
    painted = {t for t in truth if any(
        osp.basename(t).replace('_gtFine_labelTrainIds.png', '') in
        item['name'] for item in second_round)}
    run_train_al(work_dir, options, config=config, env=env,
                 extra=['--resume'])
    # A map painted again keeps what it held as <map>.round_02.bak.
    backups = glob.glob(str(root / '**' / '*.round_02.bak'), recursive=True)
    assert backups
    assert {b[:-len('.round_02.bak')] for b in backups} == \
        painted & set(after_round_1)
    for backup in backups:
        assert np.array_equal(cv2.imread(backup, cv2.IMREAD_UNCHANGED),
                              after_round_1[backup[:-len('.round_02.bak')]])
    metrics = json.load(open(osp.join(work_dir, 'rounds', 'round_02',
                                      'metrics.json')))
    assert metrics['labeled_pixel_fraction'] > 0
    for target, painted in expected.items():
        assert np.array_equal(cv2.imread(target, cv2.IMREAD_UNCHANGED),
                              painted), target


def test_whole_segmentation_images_through_label_studio(street_domains,
                                                        server, tmp_path):
    """Label maps for 6 of the 16 target images, whole images queried
    among the rest: each task shows the image as one queried region with
    the model's classes as polygons; the annotator's polygons become the
    images' label maps where the dataset reads them."""
    root = tmp_path / 'data'
    shutil.copytree(street_domains, root)
    maps = label_maps(root)
    truth = {}
    for path in maps[6:]:
        truth[path] = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        os.remove(path)
    config = ls_config(tmp_path, SEG_DEMO_CONFIG, server, 'whole')
    work_dir = str(tmp_path / 'run')
    options = seg_quick_options(str(root), rounds=1, budget=4,
                                granularity='image')
    env = token_env(server)
    first = run_train_al(work_dir, options, config=config, env=env)
    assert 'starts with 6 of 16 items labeled' in output(first)
    assert 'waits for labels in Label Studio' in output(first)
    annotator = Annotator(server)
    project = annotator.project('whole')
    assert '<PolygonLabels' in annotator.call(
        'GET', f'/api/projects/{project}')['label_config']
    classes = [c['name'] for c in json.load(open(osp.join(
        work_dir, 'rounds', 'query_01', 'query.json')))['categories']]
    tasks = annotator.tasks(project)
    assert len(tasks) == 4
    expected = {}
    for task in tasks:
        name = task['data']['mmsaal_path']
        target = [p for p in truth if osp.basename(p).replace(
            '_gtFine_labelTrainIds.png', '') in name][0]
        (shown, ) = [r for r in task['predictions'][0]['result']
                     if r['from_name'] == 'queried']
        assert (shown['value']['width'], shown['value']['height']) == (
            100.0, 100.0)
        h, w = truth[target].shape
        known = truth[target][truth[target] != 255]
        label = int(np.bincount(known).argmax())
        painted = np.full((h, w), 255, np.uint8)
        painted[1:h - 1, 1:w - 1] = label
        expected[target] = painted
        points = [[100 * (px + 0.5) / w, 100 * (py + 0.5) / h]
                  for px, py in ((1, 1), (w - 2, 1), (w - 2, h - 2),
                                 (1, h - 2))]
        annotator.submit(task, [dict(
            from_name='label', to_name='image', type='polygonlabels',
            original_width=w, original_height=h, value=dict(
                points=points, closed=True,
                polygonlabels=[classes[label]]))])
    run_train_al(work_dir, options, config=config, env=env,
                 extra=['--resume'])
    labeled = json.load(open(osp.join(work_dir, 'rounds', 'round_01',
                                      'labeled.json')))['items']
    assert len(labeled) == 10
    for target, painted in expected.items():
        assert np.array_equal(cv2.imread(target, cv2.IMREAD_UNCHANGED),
                              painted), target
