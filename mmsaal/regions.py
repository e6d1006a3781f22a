# Copyright (c) mmsaal contributors. All rights reserved.
"""From a per-pixel score map to query units: square regions or pixels.

Pure torch/numpy, no OpenMMLab imports. A region is a ``size x size``
window at any position of the image; it scores the mean of the map over
its pixels. Regions are picked greedily, best first, never overlapping one
another nor a pixel revealed before (RIPU's region-based setting). Pixels
are ranked by their score directly.
"""
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

GRANULARITIES = ('image', 'region', 'pixel')


def unit_area(granularity: str, region_size: int) -> int:
    """Pixels in one query unit."""
    return region_size * region_size if granularity == 'region' else 1


def rank_regions(score_map: torch.Tensor,
                 size: int,
                 max_regions: int,
                 blocked: Optional[torch.Tensor] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Greedy non-overlapping ``size x size`` regions, best mean first.

    Args:
        score_map (Tensor): ``(H, W)`` pixel scores.
        size (int): Side of the square regions.
        max_regions (int): Stop after this many.
        blocked (Tensor, optional): ``(H, W)`` bool, pixels no region may
            cover (already revealed).

    Returns:
        tuple[np.ndarray, np.ndarray]: Top-left corners ``(K, 2)`` as
        ``(y, x)`` and their scores ``(K,)``, best first, ``K <=
        max_regions``.
    """
    height, width = score_map.shape
    if height < size or width < size or max_regions <= 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float64)
    window = F.avg_pool2d(
        score_map.double()[None, None], size, stride=1)[0, 0]
    if blocked is not None and bool(blocked.any()):
        touches = F.max_pool2d(
            blocked.double()[None, None], size, stride=1)[0, 0] > 0
        window = window.masked_fill(touches, float('-inf'))
    corners, scores = [], []
    for _ in range(max_regions):
        flat = int(torch.argmax(window))
        best = float(window.view(-1)[flat])
        if best == float('-inf'):
            break
        y, x = divmod(flat, window.shape[1])
        corners.append((y, x))
        scores.append(best)
        # Every window whose top-left corner lies within size - 1 of this
        # one overlaps it.
        window[max(y - size + 1, 0):y + size, max(x - size + 1, 0):x + size] \
            = float('-inf')
    return (np.asarray(corners, np.int64).reshape(-1, 2),
            np.asarray(scores, np.float64))


def rank_pixels(score_map: torch.Tensor,
                max_pixels: int,
                blocked: Optional[torch.Tensor] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``max_pixels`` best pixels not blocked, best first (ties by
    position).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(K, 2)`` ``(y, x)`` and scores.
    """
    scores = score_map.double().flatten().cpu().numpy()
    free = np.ones_like(scores, dtype=bool) if blocked is None else \
        ~blocked.flatten().cpu().numpy()
    positions = np.flatnonzero(free)
    order = np.lexsort((positions, -scores[positions]))[:max(max_pixels, 0)]
    chosen = positions[order]
    corners = np.stack(np.divmod(chosen, score_map.shape[1]), axis=1)
    return corners.astype(np.int64).reshape(-1, 2), scores[chosen]


def rank_units(score_map: torch.Tensor, granularity: str, region_size: int,
               max_units: int,
               blocked: Optional[torch.Tensor] = None) -> Dict:
    """Rank an image's candidate units (see :func:`rank_regions`,
    :func:`rank_pixels`).

    Returns:
        dict: ``corners`` ``(K, 2)``, ``scores`` ``(K,)`` best first and
        ``shape`` ``(H, W)``.
    """
    if granularity == 'region':
        corners, scores = rank_regions(score_map, region_size, max_units,
                                       blocked)
    elif granularity == 'pixel':
        corners, scores = rank_pixels(score_map, max_units, blocked)
    else:
        raise ValueError(f'granularity must be one of {GRANULARITIES[1:]} '
                         f'to rank units, got {granularity!r}')
    return dict(
        corners=corners, scores=scores, shape=tuple(score_map.shape))


def class_shares(labels: torch.Tensor, corners: np.ndarray,
                 granularity: str, region_size: int) -> np.ndarray:
    """Each unit's share of pixels per predicted class.

    Args:
        labels (Tensor): ``(H, W)`` predicted classes (int).
        corners (np.ndarray): ``(K, 2)`` top-left ``(y, x)`` of the units.
        granularity (str): ``'region'`` or ``'pixel'``.
        region_size (int): Side of a region.

    Returns:
        np.ndarray: ``(K, labels.max() + 1)``, rows summing to 1.
    """
    labels = labels.cpu().numpy().astype(np.int64)
    num_classes = int(labels.max()) + 1 if labels.size else 1
    side = region_size if granularity == 'region' else 1
    shares = np.zeros((len(corners), num_classes), np.float64)
    for row, (y, x) in enumerate(np.asarray(corners).reshape(-1, 2)):
        window = labels[y:y + side, x:x + side].ravel()
        shares[row] = np.bincount(window, minlength=num_classes) / len(window)
    return shares


def units_mask(shape: Tuple[int, int], corners: np.ndarray,
               granularity: str, region_size: int) -> np.ndarray:
    """The bool mask of the pixels the units cover."""
    mask = np.zeros(shape, dtype=bool)
    side = region_size if granularity == 'region' else 1
    for y, x in np.asarray(corners).reshape(-1, 2):
        mask[y:y + side, x:x + side] = True
    return mask


def units_per_image(num_pixels: int, fraction: float, area: int) -> int:
    """RIPU's equal share: the units an image of ``num_pixels`` gets."""
    return int(fraction * num_pixels // area)
