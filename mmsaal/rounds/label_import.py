# Copyright (c) mmsaal contributors. All rights reserved.
"""A person's COCO labels of a waiting query, checked against it: what
``tools/import_labels.py`` and the Label Studio oracle share before they
write the labels through the pool's label files
(:mod:`mmsaal.datasets.label_files`).

Every image and box is checked against the query (an id and a
``file_name`` once each, each queried image named by one image only,
boxes of four finite numbers inside the image with a positive size, a
known category, at most ``max_boxes`` an image).
"""
import math
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List

from mmsaal.utils.files import read_json  # noqa: F401 (the tools' reader)


#: A box may reach this many pixels past the image border; it is clipped.
BORDER_SLACK = 0.5


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
