"""The generated detection sets: mmdet's own VOCDataset reads them, and
the 'clutter' style (the second set of the detection benchmark) holds what
it promises, down to empty images that a SAAL round scores and trains on.
"""
import json
import math
import os.path as osp

import pytest
from mmengine.registry import init_default_scope

from conftest import REPO, quick_options, run_train_al, small_voc_set
from mmsaal.datasets.synthetic import CLUTTER_CLASSES, generate_voc_shapes

CLUTTER_CONFIG = osp.join(REPO, 'configs', 'benchmark',
                          'saal_tiny_faster_rcnn_clutter.py')


@pytest.fixture(scope='module')
def clutter_set(tmp_path_factory):
    return small_voc_set(tmp_path_factory, 'clutter', style='clutter')


def read(data_root, split):
    from mmdet.datasets import VOCDataset
    init_default_scope('mmdet')
    return VOCDataset(
        data_root=data_root, ann_file=f'Shapes/ImageSets/Main/{split}.txt',
        data_prefix=dict(sub_data_root='Shapes/'),
        metainfo=dict(classes=CLUTTER_CLASSES), pipeline=[],
        filter_cfg=dict(filter_empty_gt=False), test_mode=split == 'test')


def test_the_clutter_style_has_six_classes_one_rare_and_empty_images(
        clutter_set, tmp_path):
    pool = read(clutter_set, 'trainval')
    assert len(pool) == 40 and len(read(clutter_set, 'test')) == 12
    labels = [i['bbox_label'] for item in (pool[k] for k in range(40))
              for i in item['instances']]
    empty = sum(not pool[k]['instances'] for k in range(40))
    assert 2 <= empty <= 20  # about a fifth
    counts = [labels.count(c) for c in range(len(CLUTTER_CLASSES))]
    assert min(counts[:5]) > 0
    assert counts[CLUTTER_CLASSES.index('diamond')] < min(counts[:5])
    # The same seed writes the same set.
    again = generate_voc_shapes(str(tmp_path), 40, 12, 96, 0,
                                style='clutter')
    name = 'Annotations/000007.xml'
    assert open(osp.join(again, name)).read() == open(
        osp.join(clutter_set, 'Shapes', name)).read()
    with pytest.raises(ValueError, match="style must be one of"):
        generate_voc_shapes(str(tmp_path), 2, 1, 96, 0, style='dusk')


def test_saal_scores_and_trains_on_a_pool_with_empty_images(
        clutter_set, tmp_path):
    """The clutter config keeps empty images in the pool (a query may land
    on one): training on them and scoring images the model finds nothing
    in must both work."""
    work_dir = str(tmp_path / 'run')
    options = quick_options(clutter_set, rounds=1, initial=10, budget=5,
                            sampler='SAALSampler')
    run_train_al(work_dir, options, config=CLUTTER_CONFIG)
    pool = read(clutter_set, 'trainval')
    assert len(pool) == 40  # empty images were not filtered out
    round_dir = osp.join(work_dir, 'rounds', 'round_01')
    labeled = json.load(open(osp.join(round_dir, 'labeled.json')))
    scores = json.load(open(osp.join(round_dir, 'scores.json')))['items']
    assert labeled['num_labeled'] == len(labeled['items']) == 15
    assert len(scores) == 30  # every unlabeled image was scored
    empty = {osp.basename(pool[k]['img_path'])
             for k in range(40) if not pool[k]['instances']}
    scored_empty = [s['score'] for s in scores if s['name'] in empty]
    assert scored_empty and all(math.isfinite(s) for s in scored_empty)
    # This seed's initial set holds an empty image (000000), trained on
    # for the round.
    assert any(i['name'] in empty for i in labeled['items'])


def test_a_coco_detection_pool_reports_its_queried_classes_and_empties(
        voc_shapes, tmp_path):
    """mmdet's CocoDataset sets ``seg_map_path=None`` beside its
    instances: the report still counts the boxes per class and the empty
    images a round queried, as for VOC (it took such a pool for a
    segmentation pool and reported neither)."""
    import numpy as np
    from mmdet.datasets import CocoDataset
    from conftest import CLASSES, voc_to_coco

    from mmsaal.pool import PoolState, RoundStore
    from mmsaal.rounds import ImageUnits, Query, RoundRecorder
    from mmsaal.rounds.pool_dataset import item_names

    with open(osp.join(voc_shapes, 'Shapes', 'ImageSets', 'Main',
                       'trainval.txt')) as f:
        names = sorted(f'{line.strip()}.jpg' for line in f if line.strip())
    coco = voc_to_coco(voc_shapes, names)
    # Two images hold nothing.
    empty_ids = {1, 2}
    coco['annotations'] = [a for a in coco['annotations']
                           if a['image_id'] not in empty_ids]
    (tmp_path / 'coco.json').write_text(json.dumps(coco))
    init_default_scope('mmdet')
    pool = CocoDataset(
        data_root=str(tmp_path), ann_file='coco.json',
        data_prefix=dict(img=osp.join(voc_shapes, 'Shapes', 'JPEGImages/')),
        metainfo=dict(classes=CLASSES), pipeline=[],
        filter_cfg=dict(filter_empty_gt=False))
    assert 'seg_map_path' in pool.get_data_info(0)
    state = PoolState(item_names(pool))
    units = ImageUnits(3)
    recorder = RoundRecorder(RoundStore(str(tmp_path / 'rounds')), state,
                             units, pool, str(tmp_path), 'coco')
    state.add_round([10])
    recorder.save_round(Query(np.asarray([10])), dict(strategy='initial'),
                        initial=True)
    queried = np.asarray([0, 1, 5])  # images 1 and 2 are empty
    state.add_round(queried)
    recorder.save_round(Query(queried), dict(strategy='S'))
    row = json.load(open(tmp_path / 'report.json'))[1]
    boxes = sum(1 for a in coco['annotations'] if a['image_id'] == 6)
    assert sum(row['queried_classes'].values()) == boxes > 0
    assert row['queried_empty'] == 2
