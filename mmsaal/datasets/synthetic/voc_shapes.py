# Copyright (c) mmsaal contributors. All rights reserved.
"""A small synthetic detection set in the real PASCAL VOC layout.

Coloured shapes on textured backgrounds, written as ``Shapes/JPEGImages``,
``Shapes/Annotations/*.xml`` and ``Shapes/ImageSets/Main/{trainval,test}.txt``
under ``VOCdevkit``, so mmdet's own ``VOCDataset`` reads it and ``VOCMetric``
evaluates it. The year folder is not called ``VOC2007``: mmdet would then
print VOC's twenty class names in its tables instead of these.

Two styles: ``'demo'`` (three shapes, one to three per image) and
``'clutter'``, a second set for strategy benchmarks: six classes, one of
them rare, smaller objects among distractor strokes and blobs that are not
objects, and a fifth of the images holding no object at all.
"""
import os
import os.path as osp
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

SHAPE_CLASSES = ('circle', 'square', 'triangle')
CLUTTER_CLASSES = ('circle', 'square', 'triangle', 'cross', 'ring',
                   'diamond')
# 'diamond' is the rare class: about one object in thirty.
CLUTTER_CLASS_WEIGHTS = (0.2, 0.2, 0.2, 0.18, 0.18, 0.04)
CLUTTER_EMPTY_FRACTION = 0.2
SUBSET = 'Shapes'
STYLES = ('demo', 'clutter')


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour gradient plus blotchy noise: a texture, not a flat fill.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(40, 200, size=3)
    slope = rng.uniform(-60, 60, size=(2, 3))
    img = base + xs[..., None] * slope[0] + ys[..., None] * slope[1]
    coarse = rng.normal(0, 25, size=(size // 8, size // 8, 3))
    img += cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw(img: np.ndarray, name: str, box: Tuple[int, int, int, int],
          color: Tuple[int, ...]) -> None:
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    if name == 'circle':
        cv2.ellipse(img, (cx, cy), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0,
                    360, color, -1)
    elif name == 'square':
        cv2.rectangle(img, (x1, y1), (x2, y2), color, -1)
    elif name == 'triangle':
        points = np.array([[cx, y1], [x1, y2], [x2, y2]])
        cv2.fillPoly(img, [points.astype(np.int32)], color)
    elif name == 'cross':
        arm = max(1, (x2 - x1) // 6)
        cv2.rectangle(img, (cx - arm, y1), (cx + arm, y2), color, -1)
        cv2.rectangle(img, (x1, cy - arm), (x2, cy + arm), color, -1)
    elif name == 'ring':
        radius = ((x2 - x1) // 2, (y2 - y1) // 2)
        thickness = max(2, (x2 - x1) // 5)
        # cv2 centres the stroke on the ellipse: pull it inside the box.
        inner = tuple(max(1, r - thickness // 2) for r in radius)
        cv2.ellipse(img, (cx, cy), inner, 0, 0, 360, color, thickness)
    elif name == 'diamond':
        points = np.array([[cx, y1], [x2, cy], [cx, y2], [x1, cy]])
        cv2.fillPoly(img, [points.astype(np.int32)], color)
    else:
        raise ValueError(f'unknown shape {name!r}')


def _overlaps(box, boxes, max_iou: float = 0.1) -> bool:
    for other in boxes:
        ix = max(0, min(box[2], other[2]) - max(box[0], other[0]))
        iy = max(0, min(box[3], other[3]) - max(box[1], other[1]))
        inter = ix * iy
        union = ((box[2] - box[0]) * (box[3] - box[1]) +
                 (other[2] - other[0]) * (other[3] - other[1]) - inter)
        if inter / union > max_iou:
            return True
    return False


def _place_objects(img: np.ndarray, rng: np.random.Generator, count: int,
                   sides: Tuple[float, float],
                   pick_name: Callable[[], str]) -> List[Dict]:
    """Draw up to ``count`` objects in square boxes of a side drawn from
    ``sides`` that overlap no earlier box (an object that finds no free
    place in 20 tries is left out); ``pick_name`` draws each one's class.
    """
    size = img.shape[0]
    objects, boxes = [], []
    for _ in range(count):
        for _attempt in range(20):
            side = int(rng.integers(*sides))
            x1 = int(rng.integers(1, size - side - 1))
            y1 = int(rng.integers(1, size - side - 1))
            box = (x1, y1, x1 + side, y1 + side)
            if not _overlaps(box, boxes):
                break
        else:
            continue
        name = pick_name()
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        _draw(img, name, box, color)
        boxes.append(box)
        objects.append(dict(name=name, bbox=box))
    return objects


def render_image(rng: np.random.Generator,
                 size: int,
                 max_objects: int = 3) -> Tuple[np.ndarray, List[Dict]]:
    """One image and its objects (``name`` and ``bbox`` x1, y1, x2, y2)."""
    img = _background(rng, size)
    objects = _place_objects(
        img, rng, int(rng.integers(1, max_objects + 1)),
        (size // 6, size // 2.5),
        lambda: SHAPE_CLASSES[int(rng.integers(len(SHAPE_CLASSES)))])
    return img, objects


def _draw_clutter(img: np.ndarray, rng: np.random.Generator, count: int,
                  size: int) -> None:
    """Distractors that are not objects: lines, open outlines of the
    objects' shapes and blobs smaller than any object."""
    for _ in range(count):
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        kind = int(rng.integers(3))
        x1, y1 = (int(v) for v in rng.integers(0, size - 8, size=2))
        if kind == 0:
            x2, y2 = (int(v) for v in rng.integers(0, size, size=2))
            cv2.line(img, (x1, y1), (x2, y2), color, int(rng.integers(1, 3)))
        elif kind == 1:
            side = int(rng.integers(size // 8, size // 3))
            cv2.rectangle(img, (x1, y1), (x1 + side, y1 + side // 2), color,
                          1)
        else:
            radius = int(rng.integers(2, max(3, size // 24)))
            cv2.circle(img, (x1 + 4, y1 + 4), radius, color, -1)


def render_cluttered_image(rng: np.random.Generator,
                           size: int,
                           max_objects: int = 5
                           ) -> Tuple[np.ndarray, List[Dict]]:
    """One image of the ``'clutter'`` style and its objects (none for
    about :data:`CLUTTER_EMPTY_FRACTION` of the images)."""
    img = _background(rng, size)
    _draw_clutter(img, rng, int(rng.integers(3, 10)), size)
    empty = rng.random() < CLUTTER_EMPTY_FRACTION
    objects = _place_objects(
        img, rng, 0 if empty else int(rng.integers(1, max_objects + 1)),
        (size // 8, size // 3),
        lambda: CLUTTER_CLASSES[int(
            rng.choice(len(CLUTTER_CLASSES), p=CLUTTER_CLASS_WEIGHTS))])
    # A few strokes on top: objects are partly crossed, not only framed.
    _draw_clutter(img, rng, int(rng.integers(0, 3)), size)
    return img, objects


def _annotation_xml(filename: str, size: int, objects: List[Dict]) -> str:
    parts = [
        '<annotation>', f'  <folder>{SUBSET}</folder>',
        f'  <filename>{filename}</filename>',
        f'  <size><width>{size}</width><height>{size}</height>'
        '<depth>3</depth></size>', '  <segmented>0</segmented>'
    ]
    for obj in objects:
        x1, y1, x2, y2 = obj['bbox']
        parts += [
            '  <object>', f'    <name>{obj["name"]}</name>',
            '    <pose>Unspecified</pose>', '    <truncated>0</truncated>',
            '    <difficult>0</difficult>',
            f'    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>'
            f'<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>', '  </object>'
        ]
    parts.append('</annotation>')
    return '\n'.join(parts) + '\n'


def generate_voc_shapes(root: str,
                        num_trainval: int = 200,
                        num_test: int = 60,
                        image_size: int = 128,
                        seed: int = 0,
                        style: str = 'demo') -> str:
    """Write the set under ``{root}/VOCdevkit/Shapes``.

    Args:
        root (str): Output folder (the config's ``data_root`` is
            ``{root}/VOCdevkit/``).
        num_trainval (int): Images of the pool. Defaults to 200.
        num_test (int): Images of the test split. Defaults to 60.
        image_size (int): Side of the square images. Defaults to 128.
        seed (int): Seed of the whole set. Defaults to 0.
        style (str): ``'demo'`` (:data:`SHAPE_CLASSES`) or ``'clutter'``
            (:data:`CLUTTER_CLASSES`, distractors, empty images).
            Defaults to ``'demo'``.

    Returns:
        str: The ``Shapes`` folder.
    """
    if style not in STYLES:
        raise ValueError(f'style must be one of {STYLES}, not {style!r}')
    render = render_image if style == 'demo' else render_cluttered_image
    voc = osp.join(root, 'VOCdevkit', SUBSET)
    for sub in ('JPEGImages', 'Annotations', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(voc, sub), exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = dict(trainval=[], test=[])
    for index in range(num_trainval + num_test):
        split = 'trainval' if index < num_trainval else 'test'
        name = f'{index:06d}'
        img, objects = render(rng, image_size)
        cv2.imwrite(osp.join(voc, 'JPEGImages', name + '.jpg'), img)
        with open(osp.join(voc, 'Annotations', name + '.xml'), 'w') as f:
            f.write(_annotation_xml(name + '.jpg', image_size, objects))
        splits[split].append(name)
    for split, names in splits.items():
        with open(osp.join(voc, 'ImageSets', 'Main', split + '.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')
    return voc
