# Copyright (c) mmsaal contributors. All rights reserved.
"""Which pixels of each pool image are labeled (region/pixel queries)."""
import io
import os
import os.path as osp
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

HIDDEN = 0


class RevealedPixels:
    """Per pool image, the round at which each of its pixels was revealed.

    ``masks[i][y, x]`` is ``round + 1`` for a pixel revealed at ``round``
    and 0 while hidden, the pixel-level twin of
    :class:`~mmsaal.pool.PoolState`'s ``labeled_round``. A pixel is never
    revealed twice. Only images with something revealed hold a mask.
    """

    def __init__(self) -> None:
        self.masks: Dict[int, np.ndarray] = {}

    def reveal(self, round_idx: int, index: int, mask: np.ndarray) -> int:
        """Reveal the ``True`` pixels of ``mask`` in image ``index``.

        Returns:
            int: Pixels revealed.
        """
        if not 0 <= round_idx < 255:
            raise ValueError(f'rounds must lie in [0, 255), got {round_idx}')
        mask = np.asarray(mask, dtype=bool)
        current = self.masks.get(index)
        if current is None:
            current = np.zeros(mask.shape, dtype=np.uint8)
        elif current.shape != mask.shape:
            raise ValueError(
                f'image {index}: a mask of {mask.shape} does not fit the '
                f'revealed mask of {current.shape}')
        twice = mask & (current != HIDDEN)
        if twice.any():
            raise ValueError(
                f'image {index}: {int(twice.sum())} pixels are revealed '
                f'already; a query must only cover hidden pixels')
        current = current.copy()
        current[mask] = round_idx + 1
        self.masks[index] = current
        return int(mask.sum())

    def blocked(self, index: int) -> Optional[np.ndarray]:
        """Bool mask of the revealed pixels of image ``index`` (None if
        nothing is)."""
        mask = self.masks.get(index)
        return None if mask is None else mask != HIDDEN

    def num_revealed(self, indices: Optional[Iterable[int]] = None) -> int:
        indices = self.masks if indices is None else indices
        return int(sum((self.masks[i] != HIDDEN).sum()
                       for i in indices if i in self.masks))

    def revealed_in(self, round_idx: int) -> Dict[int, np.ndarray]:
        """Bool masks of what ``round_idx`` revealed, per image."""
        found = {}
        for index, mask in self.masks.items():
            now = mask == round_idx + 1
            if now.any():
                found[index] = now
        return found

    def save_round(self, round_idx: int, path: str) -> None:
        """Write what ``round_idx`` revealed as a compressed NPZ (bit-packed
        masks, one entry per image), to be replayed by :meth:`load_round`."""
        arrays = {}
        for index, mask in self.revealed_in(round_idx).items():
            arrays[f'{index}'] = np.packbits(mask, axis=None)
            arrays[f'{index}_shape'] = np.asarray(mask.shape)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        with open(path, 'wb') as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def load_round(self, round_idx: int, path: str) -> int:
        """Replay a round's NPZ; returns the pixels it revealed."""
        if not osp.exists(path):
            raise RuntimeError(
                f'{path} is missing: the round folder is damaged. Restore '
                f'it, or delete the round folder to query that round again.')
        total = 0
        with np.load(path) as data:
            for key in data.files:
                if key.endswith('_shape'):
                    continue
                shape: Tuple[int, ...] = tuple(data[f'{key}_shape'])
                mask = np.unpackbits(
                    data[key], count=int(np.prod(shape))).reshape(shape)
                total += self.reveal(round_idx, int(key), mask.astype(bool))
        return total
