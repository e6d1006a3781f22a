# Copyright (c) mmsaal contributors. All rights reserved.
"""The boxes of ``PoolCocoDataset``: its COCO annotation file."""
import json
import os.path as osp
from collections import defaultdict
from typing import List, Tuple

from mmsaal.utils import WorkDirError, remove_temporaries
from mmsaal.utils.files import read_json
from . import base
from .base import LabelFiles, Written


class CocoLabelFile(LabelFiles):
    """The pool's COCO annotation file (``data_root`` + ``ann_file``),
    made when it does not exist yet: the queried images are added to its
    ``images``, their boxes to its ``annotations``. With
    ``empty_images='unlabeled'`` an image the file lists without boxes is
    unlabeled; its entry is kept (its id too) and marked
    ``"labeled": true``, so an image labeled as empty stays labeled."""

    @property
    def path(self) -> str:
        return osp.join(self.cfg.get('data_root') or '', self.cfg['ann_file'])

    @property
    def empty_unlabeled(self) -> bool:
        return self.cfg.get('empty_images', 'labeled') == 'unlabeled'

    def write_boxes(self, checked, images: List[int], replace: bool,
                    round_idx: int) -> Written:
        path = self.path
        # What a killed import left beside the pool file (mmsaal's names).
        remove_temporaries(osp.dirname(osp.abspath(path)))
        pool = read_pool_file(path, self.classes)
        objects, replaced, unchanged = merge(
            pool, checked, images, replace, self.empty_unlabeled)
        backups: List[str] = []
        written = len(images) - unchanged
        if written:
            base.write_label_file(json.dumps(pool).encode('utf-8'), path,
                             round_idx, backups)
        return Written(written, objects, replaced, backups, path)


def is_labeled(image: dict, boxes: int, empty_unlabeled: bool) -> bool:
    """Whether a COCO file's image entry is labeled: its ``"labeled"``
    when it has one; else listed (``empty_unlabeled=False``) or listed
    with a box."""
    if 'labeled' in image:
        return bool(image['labeled'])
    return boxes > 0 or not empty_unlabeled


def merge(pool: dict, checked, images: List[int], replace: bool,
          empty_unlabeled: bool = False) -> Tuple[int, List[str], int]:
    """Add ``images`` (label image ids of ``checked``) and their boxes to
    ``pool``; returns the boxes added, the images whose earlier labels were
    replaced, and how many images were left as they were (labels equal to
    those they have already: importing the same labels again changes
    nothing)."""
    categories = {c.get('name'): c.get('id') for c in pool['categories']
                  if isinstance(c, dict)}
    missing = sorted({checked.category[ann['category_id']]
                      for label_id in images
                      for ann in checked.annotations.get(label_id, ())}
                     - set(categories))
    if missing:
        raise WorkDirError(
            f'the pool annotation file lists no category {missing[0]!r} '
            f'(its categories: {sorted(map(str, categories))}), which the '
            f'labels use: add it to its "categories" with the id the '
            f'dataset gives it (the classes, in order, from 1). Nothing was '
            f'written.')
    boxes_of = defaultdict(list)
    for ann in pool['annotations']:
        boxes_of[ann['image_id']].append(ann)
    listed = {osp.normpath(image['file_name']): image
              for image in pool['images']}
    labeled = {name: image['id'] for name, image in listed.items()
               if is_labeled(image, len(boxes_of[image['id']]),
                             empty_unlabeled)}
    new_boxes = {
        label_id: [dict(ann, category_id=categories[
            checked.category[ann['category_id']]])
                   for ann in checked.annotations.get(label_id, ())]
        for label_id in images
    }
    replaced, unchanged = [], set()
    for label_id in images:
        name = checked.matched[label_id]['file_name']
        if osp.normpath(name) not in labeled:
            continue
        if _same(boxes_of[labeled[osp.normpath(name)]],
                 new_boxes[label_id]):
            unchanged.add(label_id)
        elif replace:
            replaced.append(name)
        else:
            raise WorkDirError(
                f'{name} is labeled already (imported before in this '
                f'round): pass --replace to import its labels again. '
                f'Nothing was written.')
    # An image's entry goes when its labels are replaced; an unlabeled
    # entry (empty_unlabeled) stays, with its id, and gets the boxes.
    gone = {labeled[osp.normpath(n)] for n in replaced}
    kept = {}
    for label_id in images:
        name = osp.normpath(checked.matched[label_id]['file_name'])
        if label_id not in unchanged and name in listed and \
                name not in labeled:
            kept[label_id] = listed[name]
    refilled = {image['id'] for image in kept.values()}
    pool['images'] = [i for i in pool['images'] if i['id'] not in gone]
    pool['annotations'] = [a for a in pool['annotations']
                           if a['image_id'] not in gone | refilled]
    next_image = max((i['id'] for i in pool['images']), default=0) + 1
    next_ann = max((a['id'] for a in pool['annotations']), default=0) + 1
    boxes = 0
    for label_id in images:
        if label_id in unchanged:
            continue
        queried = checked.matched[label_id]
        if label_id in kept:
            image = kept[label_id]
            image['labeled'] = True
        else:
            image = dict(id=next_image, file_name=queried['file_name'])
            next_image += 1
            if empty_unlabeled:
                image['labeled'] = True
            pool['images'].append(image)
        for key in ('width', 'height'):
            if key in queried:
                image[key] = queried[key]
        for ann in new_boxes[label_id]:
            pool['annotations'].append(dict(ann, id=next_ann,
                                            image_id=image['id']))
            next_ann += 1
            boxes += 1
    return boxes, replaced, len(unchanged)


def _same(old: List[dict], new: List[dict]) -> bool:
    """Whether two images' boxes are the same labels (ids aside)."""
    def key(ann):
        return json.dumps({k: v for k, v in ann.items()
                           if k not in ('id', 'image_id')}, sort_keys=True)
    return sorted(map(key, old)) == sorted(map(key, new))


def read_pool_file(path: str, classes: List[str]) -> dict:
    """The pool annotation file (a new one when it does not exist yet)."""
    if not osp.exists(path):
        return dict(images=[], annotations=[], categories=[
            dict(id=i + 1, name=name) for i, name in enumerate(classes)])
    pool = read_json(path, 'the pool annotation file')
    if not isinstance(pool, dict) or not all(
            isinstance(pool.get(k), list)
            for k in ('images', 'annotations', 'categories')):
        raise WorkDirError(
            f'the pool annotation file {path} is damaged (no images / '
            f'annotations / categories lists): restore it from its latest '
            f'{osp.basename(path)}.round_XX.bak.')
    return pool
