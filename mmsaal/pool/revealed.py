# Copyright (c) mmsaal contributors. All rights reserved.
"""Which pixels of each pool image are labeled (region/pixel queries)."""
import io
import os
import os.path as osp
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

Shape = Tuple[int, int]
#: The label of a pixel nobody labeled (mmseg's ``ignore_index``).
IGNORE_INDEX = 255


def save_masks(path: str, masks: Iterable[Tuple[int, np.ndarray]]) -> None:
    """Write bool masks per pool position as a compressed NPZ (bit-packed,
    ``'{index}'`` and ``'{index}_shape'`` entries), fsynced."""
    arrays = {}
    for index, mask in masks:
        arrays[f'{index}'] = np.packbits(mask, axis=None)
        arrays[f'{index}_shape'] = np.asarray(mask.shape)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with open(path, 'wb') as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())


def load_masks(path: str) -> Dict[int, np.ndarray]:
    """Read :func:`save_masks`' file back."""
    masks = {}
    with np.load(path) as data:
        for key in data.files:
            if key.endswith('_shape'):
                continue
            shape = tuple(int(v) for v in data[f'{key}_shape'])
            masks[int(key)] = np.unpackbits(
                data[key], count=int(np.prod(shape))).reshape(shape).astype(
                    bool)
    return masks


class RevealedPixels:
    """Per pool image, the pixels revealed so far.

    The pixel-level twin of :class:`~mmsaal.pool.PoolState`'s
    ``labeled_round``: a pixel is never revealed twice, and the round that
    revealed it is in that round's ``revealed.npz``. Masks are kept
    bit-packed (a 1024x2048 image takes 256 KB) with a count per image, so
    a Cityscapes-sized pool fits in memory and "is anything left" is O(1).
    Only images with something revealed hold a mask.
    """

    def __init__(self) -> None:
        self._bits: Dict[int, np.ndarray] = {}
        self._shapes: Dict[int, Shape] = {}
        self._counts: Dict[int, int] = {}

    @property
    def indices(self) -> list:
        """The pool positions with revealed pixels, sorted."""
        return sorted(self._bits)

    def mask(self, index: int) -> Optional[np.ndarray]:
        """Bool mask of the revealed pixels of image ``index`` (None if
        nothing is)."""
        if index not in self._bits:
            return None
        shape = self._shapes[index]
        return np.unpackbits(
            self._bits[index], count=shape[0] * shape[1]).reshape(shape).astype(
                bool)

    def reveal(self, index: int, mask: np.ndarray) -> int:
        """Reveal the ``True`` pixels of ``mask`` in image ``index``.

        Returns:
            int: Pixels revealed.
        """
        mask = np.asarray(mask, dtype=bool)
        current = self.mask(index)
        if current is None:
            current = np.zeros(mask.shape, dtype=bool)
        elif current.shape != mask.shape:
            raise ValueError(
                f'image {index}: a mask of {mask.shape} does not fit the '
                f'revealed mask of {current.shape}')
        twice = mask & current
        if twice.any():
            raise ValueError(
                f'image {index}: {int(twice.sum())} pixels are revealed '
                f'already; a query must only cover hidden pixels')
        added = int(mask.sum())
        self._bits[index] = np.packbits(current | mask, axis=None)
        self._shapes[index] = tuple(mask.shape)
        self._counts[index] = self._counts.get(index, 0) + added
        return added

    def num_revealed(self, indices: Optional[Iterable[int]] = None) -> int:
        indices = self._counts if indices is None else indices
        return int(sum(self._counts.get(i, 0) for i in indices))

    def load_round(self, path: str) -> int:
        """Replay a round's ``revealed.npz``; returns the pixels it
        revealed."""
        if not osp.exists(path):
            raise RuntimeError(
                f'{path} is missing: the round folder is damaged. Restore '
                f'it, or delete the round folder to query that round again.')
        return sum(
            self.reveal(index, mask)
            for index, mask in load_masks(path).items())
