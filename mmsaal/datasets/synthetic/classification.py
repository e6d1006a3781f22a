# Copyright (c) mmsaal contributors. All rights reserved.
"""Image classification sets in the folder layout mmpretrain's
``CustomDataset`` reads (``{split}/{class}/{image}.png``).

- ``write_digits``: the real handwritten digits scikit-learn ships
  (``sklearn.datasets.load_digits``: 1,797 images of 8x8 pixels, 16 grey
  levels, 10 classes, from 43 writers of the UCI set), nothing
  downloaded; a test split per class fixed by the seed.
- ``write_shape_crops``: a second set, made here: one coloured shape per
  16x16 image (six classes, ``diamond`` rare) on a textured background,
  with distractor strokes; a set the method was not developed on.
"""
import os
import os.path as osp
from typing import Dict

import cv2
import numpy as np

from .voc_shapes import CLUTTER_CLASSES, _background, _draw

#: 'diamond' is rare, as in the detection set's clutter style.
SHAPE_CROP_WEIGHTS = (0.2, 0.2, 0.2, 0.18, 0.18, 0.04)


def _write(root: str, split: str, label: str, index: int,
           image: np.ndarray) -> None:
    folder = osp.join(root, split, label)
    os.makedirs(folder, exist_ok=True)
    if not cv2.imwrite(osp.join(folder, f'{index:05d}.png'), image):
        raise OSError(f'cannot write into {folder}')


def _split(labels: np.ndarray, test_fraction: float,
           rng: np.random.Generator) -> np.ndarray:
    """A bool mask of the test items: ``test_fraction`` of each class."""
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[:int(round(test_fraction * len(members)))]] = True
    return test


def write_digits(root: str, test_fraction: float = 0.2,
                 seed: int = 0) -> Dict[str, int]:
    """Write scikit-learn's handwritten digits as ``{train,test}/{0-9}/``
    8x8 grey PNGs (its 0-16 grey levels scaled to 0-255).

    Returns:
        dict: Images per split.
    """
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)
    test = _split(digits.target, test_fraction, np.random.default_rng(seed))
    for index, (image, label) in enumerate(zip(images, digits.target)):
        _write(root, 'test' if test[index] else 'train', str(label), index,
               image)
    return dict(train=int((~test).sum()), test=int(test.sum()))


def write_shape_crops(root: str, num_train: int = 1200,
                      num_test: int = 400, size: int = 16,
                      seed: int = 0) -> Dict[str, int]:
    """Write ``num_train + num_test`` 16x16 colour images of one shape
    each (``CLUTTER_CLASSES``, drawn with ``SHAPE_CROP_WEIGHTS``) at a
    random size and place over a textured background with a distractor
    stroke.

    Returns:
        dict: Images per split.
    """
    rng = np.random.default_rng(seed)
    weights = np.asarray(SHAPE_CROP_WEIGHTS) / sum(SHAPE_CROP_WEIGHTS)
    for index in range(num_train + num_test):
        canvas = 4 * size  # drawn large, then shrunk: smooth edges
        image = _background(rng, canvas)
        # A distractor: a stroke of another colour, not an object.
        points = rng.integers(0, canvas, size=(2, 2))
        cv2.line(image, tuple(map(int, points[0])), tuple(map(int,
                                                            points[1])),
                 tuple(int(c) for c in rng.integers(0, 256, 3)),
                 int(rng.integers(2, 6)))
        label = int(rng.choice(len(CLUTTER_CLASSES), p=weights))
        side = int(rng.integers(canvas // 2, canvas - 4))
        x, y = (int(v) for v in rng.integers(0, canvas - side + 1, 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        _draw(image, CLUTTER_CLASSES[label], (x, y, x + side, y + side),
              color)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        _write(root, 'test' if index >= num_train else 'train',
               CLUTTER_CLASSES[label], index, image)
    return dict(train=num_train, test=num_test)
