# Copyright (c) mmsaal contributors. All rights reserved.
"""A small synthetic two-domain street set in the GTA5 and Cityscapes layouts.

The same scene generator (sky, buildings, trees, road, sidewalk, cars, an
ego-vehicle band that is ignored) renders two appearances: the *source*
("GTA5") in flat saturated colours with little noise, the *target*
("Cityscapes") in other colours with stripes, blotches and strong noise.
A model trained on the source alone transfers badly to the target, which is
what domain-adaptive active learning is about. The files are written as the
real datasets are:

- ``gta/images/00000.png``, ``gta/labels/00000.png`` (label ids), converted
  as ``tools/dataset_converters/gta.py`` does to ``_labelTrainIds.png``;
- ``cityscapes/leftImg8bit/{train,val}/{city}/{city}_000000_000019_leftImg8bit.png``
  and ``cityscapes/gtFine/{train,val}/{city}/..._gtFine_{labelIds,labelTrainIds}.png``,

so mmsaal's ``GTAVDataset`` and mmseg's ``CityscapesDataset`` read them.
"""
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np

from mmsaal.datasets.gtav import (convert_gta_label, gta_label_files,
                                  label_ids_to_train_ids)

#: class -> Cityscapes label id (GTA5 uses the same ids).
STREET_LABEL_IDS = dict(
    ego_vehicle=1, road=7, sidewalk=8, building=11, vegetation=21, sky=23,
    person=24, car=26)
CITIES = ('aachen', 'bremen', 'zurich')
# BGR colours per domain; the target shifts every class away from the source.
_PALETTES = dict(
    source=dict(ego_vehicle=(20, 20, 20), road=(128, 64, 128),
                sidewalk=(232, 35, 244), building=(70, 70, 70),
                vegetation=(35, 142, 107), sky=(180, 130, 70),
                car=(142, 0, 0)),
    target=dict(ego_vehicle=(60, 60, 60), road=(90, 100, 95),
                sidewalk=(150, 160, 170), building=(40, 90, 140),
                vegetation=(60, 110, 50), sky=(230, 200, 170),
                car=(30, 30, 160)))
# The 'dusk' style: other colours in both domains, a darker target.
_DUSK_PALETTES = dict(
    source=dict(ego_vehicle=(10, 10, 10), road=(110, 90, 70),
                sidewalk=(200, 180, 60), building=(120, 60, 150),
                vegetation=(60, 180, 60), sky=(90, 160, 230),
                person=(60, 20, 220), car=(200, 120, 20)),
    target=dict(ego_vehicle=(25, 25, 30), road=(55, 50, 60),
                sidewalk=(85, 80, 70), building=(70, 45, 60),
                vegetation=(40, 70, 45), sky=(80, 110, 170),
                person=(60, 60, 120), car=(110, 60, 40)))
_NOISE = dict(source=4.0, target=14.0)
#: Scene and appearance of each style: ``demo`` (``make demo-seg``) and
#: ``dusk``, a second set that differs in palettes, class frequencies (a
#: rare ``person``), void layout (side pillars, not a bottom band) and,
#: by its generator call, resolution.
STYLES = dict(
    demo=dict(palettes=_PALETTES, void='bottom', person=0.0),
    dusk=dict(palettes=_DUSK_PALETTES, void='sides', person=0.2))


def _scene(rng: np.random.Generator, height: int, width: int,
           style: str = 'demo') -> np.ndarray:
    """Label ids of one street scene."""
    ids = STREET_LABEL_IDS
    label = np.full((height, width), ids['sky'], dtype=np.uint8)
    horizon = int(height * rng.uniform(0.35, 0.55))
    label[horizon:] = ids['road']
    walk = int(width * rng.uniform(0.1, 0.25))
    for side in (0, 1):
        if rng.random() < 0.8:
            pts = np.array([[0, horizon], [walk // 3, horizon],
                            [walk, height], [0, height]])
            if side:
                pts[:, 0] = width - 1 - pts[:, 0]
            cv2.fillPoly(label, [pts.astype(np.int32)], int(ids['sidewalk']))
    x = 0
    while x < width:
        w = int(rng.integers(width // 10, width // 4))
        top = int(rng.uniform(0.05, 0.8) * horizon)
        if rng.random() < 0.7:
            label[top:horizon, x:x + w] = ids['building']
        x += w + int(rng.integers(0, width // 12))
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = int(rng.integers(0, width)), horizon - int(
            rng.integers(0, max(horizon // 2, 1)))
        r = int(rng.integers(height // 12, height // 5))
        cv2.circle(label, (cx, cy), r, int(ids['vegetation']), -1)
    for _ in range(int(rng.integers(0, 4))):
        cy = int(rng.uniform(horizon + 2, height * 0.9))
        h = max(3, int((cy - horizon) * 0.5))
        w = int(h * rng.uniform(1.4, 2.2))
        cx = int(rng.integers(0, max(width - w, 1)))
        label[max(cy - h, horizon):cy, cx:cx + w] = ids['car']
    if STYLES[style]['void'] == 'bottom':
        if rng.random() < 0.5:
            label[int(height * 0.92):] = ids['ego_vehicle']
        return label
    if rng.random() < STYLES[style]['person']:
        h = max(4, int(height * rng.uniform(0.15, 0.3)))
        w = max(2, h // 3)
        cx = int(rng.integers(0, max(width - w, 1)))
        bottom = int(rng.uniform(horizon + h / 2, height * 0.95))
        label[max(bottom - h, 0):bottom, cx:cx + w] = ids['person']
    if rng.random() < 0.6:  # the windscreen's pillars, never labeled
        side = max(2, int(width * rng.uniform(0.04, 0.08)))
        label[:, :side] = ids['ego_vehicle']
        label[:, width - side:] = ids['ego_vehicle']
    return label


def _render(rng: np.random.Generator,
            label: np.ndarray,
            domain: str,
            style: str = 'demo') -> np.ndarray:
    """The image of a scene in a domain's appearance (BGR uint8)."""
    height, width = label.shape
    img = np.zeros((height, width, 3), dtype=np.float32)
    for name, colour in STYLES[style]['palettes'][domain].items():
        jitter = rng.normal(0, 8, size=3)
        img[label == STREET_LABEL_IDS[name]] = np.asarray(colour) + jitter
    if domain == 'target':
        ys, xs = np.mgrid[0:height, 0:width]
        period = rng.uniform(3, 7)
        img += (18 * np.sin((xs + ys) / period))[..., None]
        coarse = rng.normal(0, 18, size=(max(height // 8, 1),
                                         max(width // 8, 1), 3))
        img += cv2.resize(coarse, (width, height),
                          interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, _NOISE[domain], size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_png(path: str, array: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, array):
        raise OSError(f'cannot write {path}')


def generate_street_domains(root: str,
                            num_source: int = 48,
                            num_target_train: int = 48,
                            num_target_val: int = 16,
                            size: Tuple[int, int] = (64, 128),
                            seed: int = 0,
                            style: str = 'demo') -> Dict[str, int]:
    """Write the two-domain set under ``root`` (``gta/``, ``cityscapes/``).

    Args:
        root (str): Output folder.
        num_source (int): Labeled source images. Defaults to 48.
        num_target_train (int): Target pool images. Defaults to 48.
        num_target_val (int): Target validation images. Defaults to 16.
        size (tuple[int, int]): ``(height, width)``. Defaults to (64, 128).
        seed (int): Defaults to 0.
        style (str): A key of :data:`STYLES`. Defaults to ``'demo'``.

    Returns:
        dict[str, int]: Images written per split.
    """
    if style not in STYLES:
        raise ValueError(f'style must be one of {sorted(STYLES)}, got '
                         f'{style!r}')
    rng = np.random.default_rng(seed)
    height, width = size
    gta = osp.join(root, 'gta')
    for i in range(num_source):
        label = _scene(rng, height, width, style)
        _write_png(osp.join(gta, 'images', f'{i:05d}.png'),
                   _render(rng, label, 'source', style))
        _write_png(osp.join(gta, 'labels', f'{i:05d}.png'), label)
    for path in gta_label_files(gta):
        convert_gta_label(path)
    city = osp.join(root, 'cityscapes')
    for split, count in (('train', num_target_train),
                         ('val', num_target_val)):
        for i in range(count):
            town = CITIES[i % len(CITIES)]
            stem = f'{town}_{i:06d}_000019'
            label = _scene(rng, height, width, style)
            _write_png(
                osp.join(city, 'leftImg8bit', split, town,
                         f'{stem}_leftImg8bit.png'),
                _render(rng, label, 'target', style))
            gt = osp.join(city, 'gtFine', split, town, f'{stem}_gtFine')
            _write_png(f'{gt}_labelIds.png', label)
            _write_png(f'{gt}_labelTrainIds.png',
                       label_ids_to_train_ids(label))
    return dict(
        source=num_source, target_train=num_target_train,
        target_val=num_target_val)
