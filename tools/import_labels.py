# Copyright (c) mmsaal contributors. All rights reserved.
"""Bring a person's labels of the waiting query into the dataset.

With ``active_learning.oracle='human'`` a round stops after writing
``{work_dir}/rounds/query_XX/query.json`` (a COCO image list). Label those
images in any annotation tool, export COCO, then::

    python tools/import_labels.py WORK_DIR LABELS.json
    python tools/train_al.py CONFIG --work-dir WORK_DIR --resume

The labels are matched to the query by ``file_name`` and merged into the
annotation file of the pool (``PoolCocoDataset.ann_file``, created when it
does not exist yet), written atomically. Labels of images the query did not
list are refused, and so is a query left partly unlabeled (``--partial``
allows it: resume then waits for the rest).
"""
import argparse
import json
import os.path as osp

from mmengine.config import Config

from mmsaal.rounds.pool_dataset import pool_dataset_cfg
from mmsaal.pool import RoundStore, write_text_atomic
from mmsaal.utils import work_dir_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('labels', help='COCO annotation file')
    parser.add_argument('--config', help='defaults to the one in WORK_DIR')
    parser.add_argument(
        '--partial',
        action='store_true',
        help='import even if some queried images are not labeled yet')
    return parser.parse_args()


def load_coco(path: str, what: str) -> dict:
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise SystemExit(f'cannot read {what} {path}: {err}')
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise SystemExit(f'{what} {path} is not a COCO file (no "images" '
                         f'list)')
    return data


def pool_annotation_file(cfg: Config) -> tuple:
    """``(path, classes)`` of the pool's ``PoolCocoDataset``."""
    dataset = pool_dataset_cfg(cfg)
    if not str(dataset.get('type', '')).endswith('PoolCocoDataset'):
        raise SystemExit(
            f'the pool dataset is {dataset.get("type")}: import_labels.py '
            f'writes COCO labels for mmsaal.PoolCocoDataset. For other '
            f'datasets add the label files where the dataset reads them, '
            f'then resume.')
    path = osp.join(dataset.get('data_root') or '', dataset['ann_file'])
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        from mmsaal.datasets import PoolCocoDataset
        classes = PoolCocoDataset.METAINFO['classes']
    return path, list(classes)


def match_images(query: dict, labels: dict, round_idx: int,
                 partial: bool) -> dict:
    """``{label image id: query image}``, refusing unqueried images."""
    queried = {osp.normpath(image['file_name']): image
               for image in query['images']}
    by_base = {osp.basename(name): image for name, image in queried.items()}
    matched, extra = {}, []
    for image in labels['images']:
        name = osp.normpath(image['file_name'])
        found = queried.get(name) or by_base.get(osp.basename(name))
        if found is None:
            extra.append(image['file_name'])
        else:
            matched[image['id']] = found
    if extra:
        raise SystemExit(
            f'the labels cover {len(extra)} images that round {round_idx} '
            f'did not query, e.g. {extra[:5]}: only the images of its '
            f'query.json can be imported.')
    missing = sorted(
        set(image['file_name'] for image in query['images']) -
        set(image['file_name'] for image in matched.values()))
    if missing and not partial:
        raise SystemExit(
            f'{len(missing)} queried images have no labels in the file, '
            f'e.g. {missing[:5]}. Label them (an image without objects is '
            f'listed with no annotation), or pass --partial.')
    return matched


def merge(pool: dict, labels: dict, matched: dict, classes: list) -> int:
    """Append the matched images and their annotations to ``pool``."""
    categories = {c['name']: c['id'] for c in pool['categories']}
    category_of = {}
    for category in labels.get('categories', []):
        if category['name'] not in categories:
            raise SystemExit(
                f'the labels use the class {category["name"]!r}, which the '
                f'dataset does not have ({classes})')
        category_of[category['id']] = categories[category['name']]
    labeled = {osp.normpath(image['file_name']) for image in pool['images']}
    next_image = max((image['id'] for image in pool['images']), default=0) + 1
    next_ann = max((ann['id'] for ann in pool['annotations']), default=0) + 1
    new_id = {}
    for label_id, queried in matched.items():
        if osp.normpath(queried['file_name']) in labeled:
            raise SystemExit(f'{queried["file_name"]} is labeled already')
        image = dict(id=next_image, file_name=queried['file_name'])
        for key in ('width', 'height'):
            if key in queried:
                image[key] = queried[key]
        pool['images'].append(image)
        new_id[label_id] = next_image
        next_image += 1
    count = 0
    for ann in labels.get('annotations', []):
        if ann['image_id'] not in new_id:
            continue
        pool['annotations'].append(
            dict(ann, id=next_ann, image_id=new_id[ann['image_id']],
                 category_id=category_of[ann['category_id']]))
        next_ann += 1
        count += 1
    return count


def main():
    args = parse_args()
    config = args.config or work_dir_config(args.work_dir)
    cfg = Config.fromfile(config)
    state_dir = (cfg.get('active_learning') or {}).get('state_dir', 'rounds')
    store = RoundStore(osp.join(args.work_dir, state_dir))
    round_idx = store.pending_query()
    if round_idx is None:
        raise SystemExit(f'no query waits for labels in {store.root}')
    query = load_coco(
        osp.join(store.query_dir(round_idx), 'query.json'), 'the query')
    labels = load_coco(args.labels, 'the labels')
    matched = match_images(query, labels, round_idx, args.partial)
    path, classes = pool_annotation_file(cfg)
    if osp.exists(path):
        pool = load_coco(path, 'the pool annotation file')
    else:
        pool = dict(
            images=[],
            annotations=[],
            categories=[
                dict(id=i + 1, name=name) for i, name in enumerate(classes)
            ])
    boxes = merge(pool, labels, matched, classes)
    write_text_atomic(json.dumps(pool), path)
    print(f'imported {len(matched)} images ({boxes} objects) of round '
          f'{round_idx} into {path}. Go on with:\n  python tools/train_al.py '
          f'{config} --work-dir {args.work_dir} --resume')


if __name__ == '__main__':
    main()
