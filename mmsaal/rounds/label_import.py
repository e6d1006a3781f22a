# Copyright (c) mmsaal contributors. All rights reserved.
"""A person's COCO labels of a waiting query, checked and merged into the
pool's annotation file (``PoolCocoDataset.ann_file``): what
``tools/import_labels.py`` and the Label Studio oracle share.

Every image and box is checked against the query first (an id and a
``file_name`` once each, each queried image named by one image only,
boxes of four finite numbers inside the image with a positive size, a
known category, at most ``max_boxes`` an image); the file is written
atomically after a backup (``{ann_file}.round_XX.bak``), and not at all
when it would not change.
"""
import json
import math
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple

from mmsaal.pool import write_text_atomic
from mmsaal.utils import WorkDirError, write_bytes_atomic
from mmsaal.utils.files import MAX_JSON_MB, FileTooLarge, read_capped


#: A box may reach this many pixels past the image border; it is clipped.
BORDER_SLACK = 0.5


def read_json(path: str, what: str, max_mb: float = None):
    """A JSON file, refusing NaN / Infinity (which JSON does not have), a
    file that is not a regular one (a device, a folder) and one larger than
    ``max_mb`` (default :data:`~mmsaal.utils.files.MAX_JSON_MB`) before
    reading it."""
    limit = MAX_JSON_MB if max_mb is None else max_mb
    try:
        data = read_capped(path, int(limit * 2**20))
    except FileTooLarge as err:
        raise WorkDirError(
            f'{what} {path} is {err}, over '
            + (f'--max-mb {limit:g}' if max_mb is not None else
               f'{limit:g} MB') +
            ': a query\'s labels are far smaller. Check the file'
            + (', or raise --max-mb.' if max_mb is not None else '.')
        ) from None
    except OSError as err:
        raise WorkDirError(f'cannot read {what} {path}: {err}') from None
    try:
        return json.loads(data.decode('utf-8'), parse_constant=_no_constant)
    except ValueError as err:
        raise WorkDirError(f'cannot read {what} {path}: {err}') from None


def _no_constant(name: str):
    raise ValueError(f'{name} is not a number JSON knows')


def pool_annotation_file(dataset: dict) -> tuple:
    """``(path, classes)`` of the pool's ``PoolCocoDataset``."""
    if not str(dataset.get('type', '')).endswith('PoolCocoDataset'):
        raise WorkDirError(
            f'the pool dataset is {dataset.get("type")}: COCO labels are '
            f'imported for mmsaal.PoolCocoDataset. For other datasets add '
            f'the label files where the dataset reads them, then resume.')
    path = osp.join(dataset.get('data_root') or '', dataset['ann_file'])
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        from mmsaal.datasets import PoolCocoDataset
        classes = PoolCocoDataset.METAINFO['classes']
    return path, list(classes)


# ------------------------------------------------------------- the checks
def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(
        value, bool) and math.isfinite(value)


def match_queried(name: str, queried: Dict[str, dict]):
    """The queried image (of ``{normalized file_name: image}``) that a
    label file's ``file_name`` names: the same relative path; else the one
    queried path that it ends with, by whole folders (a tool that prefixes
    its own root); else, for a bare file name, the one queried image of
    that name. None when none matches, the candidates' names when several
    do: an image is never taken for another of the same file name in
    another folder."""
    path = osp.normpath(name)
    if path in queried:
        return queried[path]
    parts = path.split(os.sep)
    found = [q for q in queried
             if len(q.split(os.sep)) < len(parts)
             and parts[-len(q.split(os.sep)):] == q.split(os.sep)]
    if not found and len(parts) == 1:
        found = [q for q in queried if osp.basename(q) == path]
    if len(found) == 1:
        return queried[found[0]]
    return sorted(found) or None


class Checked:
    """The labels file, checked against the query: the images matched to
    queried ones, and every problem by the label image it belongs to
    (``None``: the file as a whole)."""

    def __init__(self, labels, query: dict, classes: List[str],
                 max_boxes: int) -> None:
        self.problems: Dict = defaultdict(list)
        self.names: Dict = {}  # label image id -> its file_name
        self.matched: Dict = {}  # label image id -> queried image
        self.annotations: Dict = defaultdict(list)  # label image id -> anns
        self.category: Dict = {}  # label category id -> class name
        #: Boxes within BORDER_SLACK past the border, clipped to the image.
        self.clipped = 0
        if not isinstance(labels, dict) or not isinstance(
                labels.get('images'), list):
            self.problems[None].append('it is not a COCO file: no "images" '
                                       'list')
            return
        self._categories(labels, classes)
        self._images(labels, query)
        self._annotations(labels, max_boxes)

    def _categories(self, labels: dict, classes: List[str]) -> None:
        categories = labels.get('categories', [])
        if not isinstance(categories, list):
            self.problems[None].append('"categories" is not a list')
            return
        for j, category in enumerate(categories):
            where = f'categories[{j}]'
            if not isinstance(category, dict) or not is_int(
                    category.get('id')) or not isinstance(
                        category.get('name'), str):
                self.problems[None].append(
                    f'{where}: needs an int "id" and a str "name", got '
                    f'{category!r:.80}')
            elif category['id'] in self.category:
                self.problems[None].append(
                    f'{where}: category id {category["id"]} is listed twice')
            elif category['name'] not in classes:
                self.problems[None].append(
                    f'{where}: the class {category["name"]!r} is not one of '
                    f'the dataset\'s {classes}')
            else:
                self.category[category['id']] = category['name']

    def _images(self, labels: dict, query: dict) -> None:
        queried = {osp.normpath(image['file_name']): image
                   for image in query['images']}
        taken: Dict = {}  # queried file_name -> label image id
        for j, image in enumerate(labels['images']):
            if not isinstance(image, dict) or not is_int(
                    image.get('id')) or not isinstance(
                        image.get('file_name'), str) or not image['file_name']:
                self.problems[None].append(
                    f'images[{j}]: needs an int "id" and a "file_name", got '
                    f'{image!r:.80}')
                continue
            image_id, name = image['id'], image['file_name']
            if image_id in self.names:
                self.problems[None].append(
                    f'images[{j}]: image id {image_id} is listed twice '
                    f'({self.names[image_id]} and {name}): each image needs '
                    f'its own id')
                continue
            self.names[image_id] = name
            found = match_queried(name, queried)
            if isinstance(found, list):
                self.problems[image_id].append(
                    f'{name!r} could be any of the queried images '
                    f'{found[:4]}: name it by its path as query.json has it')
                continue
            if found is None:
                self.problems[image_id].append(
                    'the round did not query this image (only the images '
                    'of its query.json can be imported, named by their path '
                    'as query.json has it)')
                continue
            if found['file_name'] in taken:
                other = self.names[taken[found['file_name']]]
                self.problems[None].append(
                    f'{other} and {name} both name the queried image '
                    f'{found["file_name"]}: list each image once')
                continue
            taken[found['file_name']] = image_id
            for key in ('width', 'height'):
                if key in image and found.get(key) is not None and \
                        image[key] != found[key]:
                    self.problems[image_id].append(
                        f'{key} {image[key]!r} is not the image\'s '
                        f'{found[key]}')
            self.matched[image_id] = found

    def _annotations(self, labels: dict, max_boxes: int) -> None:
        annotations = labels.get('annotations', [])
        if not isinstance(annotations, list):
            self.problems[None].append('"annotations" is not a list')
            return
        ids = set()
        for j, ann in enumerate(annotations):
            where = f'annotations[{j}]'
            if not isinstance(ann, dict):
                self.problems[None].append(f'{where}: not an object')
                continue
            image_id = ann.get('image_id')
            if not is_int(image_id) or image_id not in self.names:
                self.problems[None].append(
                    f'{where}: image_id {image_id!r} names no image of the '
                    f'file')
                continue
            if is_int(ann.get('id')):
                if ann['id'] in ids:
                    self.problems[image_id].append(
                        f'{where}: annotation id {ann["id"]} is listed '
                        f'twice')
                ids.add(ann['id'])
            problem = self._box(ann, self.matched.get(image_id, {}))
            if problem:
                self.problems[image_id].append(f'{where}: {problem}')
            else:
                self.annotations[image_id].append(ann)
        for image_id, anns in self.annotations.items():
            if len(anns) > max_boxes:
                self.problems[image_id].append(
                    f'{len(anns)} boxes, over --max-boxes {max_boxes}')

    def _box(self, ann: dict, image: dict) -> str:
        if ann.get('category_id') not in self.category:
            return (f'category_id {ann.get("category_id")!r} is not in the '
                    f'file\'s categories')
        box = ann.get('bbox')
        if not isinstance(box, list) or len(box) != 4 or not all(
                is_number(v) for v in box):
            return f'bbox {box!r:.80} is not 4 finite numbers'
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return f'bbox {box} has no area (width and height must be > 0)'
        width, height = image.get('width'), image.get('height')
        slack = BORDER_SLACK
        if x < -slack or y < -slack or (width and x + w > width + slack) or (
                height and y + h > height + slack):
            return (f'bbox {box} leaves the image ({width}x{height}: x, y '
                    f'>= 0, x + w <= width, y + h <= height)')
        x0, y0 = max(x, 0), max(y, 0)
        x1 = min(x + w, width) if width else x + w
        y1 = min(y + h, height) if height else y + h
        if (x0, y0, x1, y1) != (x, y, x + w, y + h):
            # Within half a pixel of the border: what an annotation tool's
            # percentages round to at the image's edge. Clipped.
            if x1 <= x0 or y1 <= y0:
                return (f'bbox {box} has no area inside the image '
                        f'({width}x{height})')
            ann['bbox'] = [x0, y0, x1 - x0, y1 - y0]
            self.clipped += 1
        if 'iscrowd' in ann and ann['iscrowd'] not in (0, 1):
            return f'iscrowd {ann["iscrowd"]!r} is not 0 or 1'
        if 'area' in ann and not (is_number(ann['area'])
                                  and ann['area'] >= 0):
            return f'area {ann["area"]!r} is not a number >= 0'
        segmentation = ann.get('segmentation')
        if isinstance(segmentation, list) and not all(
                isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                and all(is_number(v) for v in p) for p in segmentation):
            return 'segmentation is not a list of polygons of finite numbers'
        return ''

    def lines(self) -> List[str]:
        """Every problem, with its image."""
        out = list(self.problems.get(None, ()))
        for image_id, problems in self.problems.items():
            if image_id is not None:
                out += [f'{self.names[image_id]} (image id {image_id}): {p}'
                        for p in problems]
        return out


# ------------------------------------------------------------- the import
def merge(pool: dict, checked: Checked, images: List[int],
          replace: bool) -> Tuple[int, List[str]]:
    """Add ``images`` (label image ids) and their boxes to ``pool``;
    returns the boxes added and the images whose earlier labels were
    replaced (an image whose labels are those it has already is left as it
    is, so importing the same labels again changes nothing)."""
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
    labeled = {osp.normpath(image['file_name']): image['id']
               for image in pool['images']}
    boxes_of = defaultdict(list)
    for ann in pool['annotations']:
        boxes_of[ann['image_id']].append(ann)
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
    gone = {labeled[osp.normpath(n)] for n in replaced}
    pool['images'] = [i for i in pool['images'] if i['id'] not in gone]
    pool['annotations'] = [a for a in pool['annotations']
                           if a['image_id'] not in gone]
    next_image = max((i['id'] for i in pool['images']), default=0) + 1
    next_ann = max((a['id'] for a in pool['annotations']), default=0) + 1
    boxes = 0
    for label_id in images:
        if label_id in unchanged:
            continue
        queried = checked.matched[label_id]
        image = dict(id=next_image, file_name=queried['file_name'])
        for key in ('width', 'height'):
            if key in queried:
                image[key] = queried[key]
        pool['images'].append(image)
        for ann in new_boxes[label_id]:
            pool['annotations'].append(dict(ann, id=next_ann,
                                            image_id=next_image))
            next_ann += 1
            boxes += 1
        next_image += 1
    return boxes, replaced


def _same(old: List[dict], new: List[dict]) -> bool:
    """Whether two images' boxes are the same labels (ids aside)."""
    def key(ann):
        return json.dumps({k: v for k, v in ann.items()
                           if k not in ('id', 'image_id')}, sort_keys=True)
    return sorted(map(key, old)) == sorted(map(key, new))


def backup(path: str, round_idx: int) -> str:
    """Copy the pool file to ``{path}.round_XX[.N].bak`` before it changes."""
    stem = f'{path}.round_{round_idx:02d}'
    target, n = f'{stem}.bak', 1
    while osp.exists(target):
        n += 1
        target = f'{stem}.{n}.bak'
    with open(path, 'rb') as f:
        data = f.read()
    write_bytes_atomic(data, target)
    return target


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


def write_pool_file(path: str, pool: dict, round_idx: int):
    """Write ``pool`` to ``path`` after a backup of what is there; nothing
    at all when the file holds it already. Returns the backup's path (None
    when there was nothing to back up), or False when nothing changed."""
    text = json.dumps(pool)
    saved = None
    if osp.exists(path):
        with open(path, encoding='utf-8') as f:
            if json.load(f) == json.loads(text):
                return False
        saved = backup(path, round_idx)
    write_text_atomic(text, path)
    return saved
