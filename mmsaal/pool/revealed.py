# Copyright (c) mmsaal contributors. All rights reserved.
"""Which pixels of each pool image are labeled (region/pixel queries).

What a round reveals in an image is a :class:`Reveal`: the whole image,
square regions (their corners) or single pixels (their positions), never
a full-size mask. The pool's :class:`RevealedPixels` keeps these per
image and paints an image's mask only when one is asked for, so a
Cityscapes-sized pool holds kilobytes per image, not the 256 KB of a
packed 1024x2048 mask.

A round's reveals are written to ``round_XX/revealed.npz`` (format 2,
:func:`save_reveals`): corners as int32, pixel positions as sorted
offsets split into byte planes, both deflated. The format-1 files of
earlier versions (one bit-packed mask per image) are still read.
"""
import hashlib
import os.path as osp
import zipfile
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from mmsaal.utils.errors import WorkDirError
from mmsaal.utils.files import atomic_write

#: A round's reveals (:func:`save_reveals`), in its round folder.
REVEALED_FILE = 'revealed.npz'

Shape = Tuple[int, int]
#: The label of a pixel nobody labeled (mmseg's ``ignore_index``).
IGNORE_INDEX = 255
#: What a reveal covers; ``'mask'`` is a bit-packed mask of a format-1
#: file.
KINDS = ('image', 'region', 'pixel', 'mask')
FORMAT = 2


class Reveal:
    """The pixels a round reveals in one image.

    Args:
        shape (tuple[int, int]): ``(height, width)`` of the image.
        kind (str): ``'image'`` (every pixel), ``'region'`` (``side x
            side`` squares at ``coords`` ``(K, 2)`` top-left ``(y, x)``,
            not overlapping), ``'pixel'`` (the pixels at ``coords`` ``(K,
            2)`` ``(y, x)``, or ``(K,)`` row-major positions) or
            ``'mask'`` (``coords`` is a bool mask of the image).
        coords (np.ndarray, optional): See ``kind``.
        side (int): Side of the regions. Defaults to 1.

    Raises:
        ValueError: When the units leave the image, overlap, or repeat.
    """

    __slots__ = ('shape', 'kind', 'coords', 'side')

    def __init__(self,
                 shape: Shape,
                 kind: str = 'image',
                 coords: Optional[np.ndarray] = None,
                 side: int = 1) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.kind = kind
        self.side = int(side)
        height, width = self.shape
        if kind not in KINDS:
            raise ValueError(f'a reveal is one of {KINDS}, got {kind!r}')
        if kind == 'region':
            coords = np.asarray(coords, np.int64).reshape(-1, 2)
            if len(coords) and (coords.min() < 0 or
                                coords[:, 0].max() > height - side or
                                coords[:, 1].max() > width - side):
                raise ValueError(f'regions of {side}x{side} at {coords} '
                                 f'leave the image of {self.shape}')
            self.coords = coords.astype(np.int32)
            if _regions_overlap(self.coords, side):
                raise ValueError(f'regions of {side}x{side} at '
                                 f'{coords.tolist()} overlap')
        elif kind == 'pixel':
            coords = np.asarray(coords, np.int64)
            if coords.ndim == 2:
                coords = coords[:, 0] * width + coords[:, 1]
            flat = np.sort(coords.reshape(-1))
            if len(flat) and (flat[0] < 0 or flat[-1] >= height * width):
                raise ValueError(f'pixels at {flat.tolist()[:10]}... leave '
                                 f'the image of {self.shape}')
            if len(flat) > 1 and not (np.diff(flat) > 0).all():
                raise ValueError('a pixel is listed twice in one reveal')
            self.coords = flat.astype(np.uint32 if height *
                                      width <= 2**32 else np.int64)
        elif kind == 'mask':
            mask = np.asarray(coords, bool)
            if mask.shape != self.shape:
                raise ValueError(f'a mask of {mask.shape} for an image of '
                                 f'{self.shape}')
            self.coords = np.packbits(mask, axis=None)
        else:
            self.coords = None

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> 'Reveal':
        return cls(np.shape(mask), 'mask', mask)

    def count(self) -> int:
        """How many pixels it reveals."""
        if self.kind == 'image':
            return self.shape[0] * self.shape[1]
        if self.kind == 'region':
            return len(self.coords) * self.side * self.side
        if self.kind == 'pixel':
            return len(self.coords)
        return int(np.unpackbits(self.coords).sum())

    def paint(self, mask: np.ndarray) -> None:
        """Set the pixels it reveals in the bool ``mask`` of the image."""
        if self.kind == 'image':
            mask[...] = True
        elif self.kind == 'region':
            side = self.side
            for y, x in self.coords.tolist():
                mask[y:y + side, x:x + side] = True
        elif self.kind == 'pixel':
            mask.reshape(-1)[self.coords.astype(np.int64)] = True
        else:
            mask |= self._mask()

    def mask(self) -> np.ndarray:
        """The bool mask of the image's pixels it reveals."""
        mask = np.zeros(self.shape, bool)
        self.paint(mask)
        return mask

    def covers_any(self, mask: np.ndarray) -> bool:
        """Whether it reveals a pixel that is True in ``mask``."""
        if self.kind == 'image':
            return bool(mask.any())
        if self.kind == 'region':
            side = self.side
            return any(mask[y:y + side, x:x + side].any()
                       for y, x in self.coords.tolist())
        if self.kind == 'pixel':
            return bool(mask.reshape(-1)[self.coords.astype(np.int64)].any())
        return bool((mask & self._mask()).any())

    def values(self, image: np.ndarray) -> np.ndarray:
        """The values of ``image`` ``(H, W)`` at the pixels it reveals."""
        if self.kind == 'image':
            return image.reshape(-1)
        if self.kind == 'region':
            side = self.side
            parts = [image[y:y + side, x:x + side].reshape(-1)
                     for y, x in self.coords.tolist()]
            return np.concatenate(parts) if parts else image[:0, 0]
        if self.kind == 'pixel':
            return image.reshape(-1)[self.coords.astype(np.int64)]
        return image[self._mask()]

    def _mask(self) -> np.ndarray:
        return np.unpackbits(
            self.coords, count=self.shape[0] * self.shape[1]).reshape(
                self.shape).astype(bool)

    def __eq__(self, other) -> bool:
        """Two reveals are equal when they reveal the same pixels."""
        if not isinstance(other, Reveal) or other.shape != self.shape:
            return False
        return np.array_equal(self.mask(), other.mask())

    def __repr__(self) -> str:
        return (f'Reveal({self.shape}, {self.kind!r}, '
                f'{self.count()} pixels)')


def _regions_overlap(corners: np.ndarray, side: int) -> bool:
    if len(corners) < 2:
        return False
    if len(corners) > 512:
        # Paint them instead of comparing every pair.
        top = corners.max(axis=0) + side
        mask = np.zeros(tuple(top), np.int32)
        for y, x in corners.tolist():
            mask[y:y + side, x:x + side] += 1
        return bool(mask.max() > 1)
    delta = np.abs(corners[:, None, :].astype(np.int64) - corners[None])
    close = (delta < side).all(axis=2)
    np.fill_diagonal(close, False)
    return bool(close.any())


def _overlaps(before: List[Reveal], reveal: Reveal) -> bool:
    """Whether ``reveal`` covers a pixel of ``before`` (same image):
    corners or positions compared directly when all are of one kind, the
    painted mask otherwise."""
    if all(r.kind == reveal.kind == 'region' and r.side == reveal.side
           for r in before):
        side = reveal.side
        earlier = np.concatenate([r.coords for r in before]).astype(np.int64)
        for start in range(0, len(reveal.coords), 256):
            chunk = reveal.coords[start:start + 256].astype(np.int64)
            delta = np.abs(chunk[:, None, :] - earlier[None])
            if (delta < side).all(axis=2).any():
                return True
        return False
    if all(r.kind == reveal.kind == 'pixel' for r in before):
        return any(
            np.isin(reveal.coords, r.coords, assume_unique=True).any()
            for r in before)
    mask = np.zeros(reveal.shape, bool)
    for r in before:
        r.paint(mask)
    return reveal.covers_any(mask)


# ------------------------------------------------------------- round files
def save_reveals(path: str, reveals: Iterable[Tuple[int, Reveal]]) -> None:
    """Write a round's reveals (by pool position) to ``path`` (format 2),
    atomically."""
    index, shape, kind, side, count = [], [], [], [], []
    corners, offsets = [], []
    for position, reveal in reveals:
        index.append(int(position))
        shape.append(reveal.shape)
        kind.append(KINDS.index(reveal.kind))
        side.append(reveal.side)
        if reveal.kind == 'region':
            corners.append(reveal.coords)
            count.append(len(reveal.coords))
        elif reveal.kind == 'pixel':
            offsets.append(np.diff(reveal.coords.astype(np.int64),
                                   prepend=0))
            count.append(len(reveal.coords))
        elif reveal.kind == 'mask':
            raise ValueError('masks are read from format-1 files only')
        else:
            count.append(0)
    pixels = np.concatenate(offsets) if offsets else np.zeros(0, np.int64)
    if len(pixels) and pixels.max() >= 2**32:
        raise ValueError('an image of more than 2**32 pixels')
    arrays = dict(
        format=np.asarray(FORMAT),
        index=np.asarray(index, np.int64),
        shape=np.asarray(shape, np.int64).reshape(-1, 2),
        kind=np.asarray(kind, np.uint8),
        side=np.asarray(side, np.int64),
        count=np.asarray(count, np.int64),
        corners=np.concatenate(corners) if corners else np.zeros(
            (0, 2), np.int32),
        # Row-major offsets, little-endian uint32 split into byte planes:
        # the high bytes of small offsets are runs of zeros, which deflate
        # takes to almost nothing.
        pixels=np.ascontiguousarray(
            pixels.astype('<u4').view(np.uint8).reshape(-1, 4).T))
    with atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


def load_reveals(path: str) -> List[Tuple[int, Reveal]]:
    """Read :func:`save_reveals`' file (or a format-1 file of masks).

    Raises:
        RuntimeError: Naming the file and the fix, when it is missing or
            damaged.
    """
    if not osp.exists(path):
        raise WorkDirError(
            f'{path} is missing: the round folder is damaged. Restore it, '
            f'or delete the round folder (and the ones after it) to query '
            f'that round again.')
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        if 'format' not in arrays:
            return _format_1(arrays)
        return _format_2(arrays)
    except (OSError, ValueError, KeyError, EOFError, TypeError,
            zipfile.BadZipFile) as err:
        raise WorkDirError(
            f'cannot read {path} ({type(err).__name__}: {err}): the file '
            f'is damaged. Restore it from a backup, or delete its round '
            f'folder (and the ones after it) to query that round again.'
        ) from err


def _format_1(arrays: Dict[str, np.ndarray]) -> List[Tuple[int, Reveal]]:
    reveals = []
    for key in sorted((k for k in arrays if not k.endswith('_shape')),
                      key=int):
        shape = tuple(int(v) for v in arrays[f'{key}_shape'])
        mask = np.unpackbits(
            arrays[key], count=int(np.prod(shape))).reshape(shape)
        reveals.append((int(key), Reveal.from_mask(mask.astype(bool))))
    return reveals


def _format_2(arrays: Dict[str, np.ndarray]) -> List[Tuple[int, Reveal]]:
    if int(arrays['format']) != FORMAT:
        raise ValueError(f'format {int(arrays["format"])} is not known here '
                         f'(this version reads formats 1 and {FORMAT})')
    index, shape, kind = arrays['index'], arrays['shape'], arrays['kind']
    side, count = arrays['side'], arrays['count']
    if not (len(index) == len(shape) == len(kind) == len(side) ==
            len(count)) or (kind >= len(KINDS)).any() or (count < 0).any():
        raise ValueError('its tables disagree')
    corners = arrays['corners'].astype(np.int64).reshape(-1, 2)
    planes = arrays['pixels']
    if planes.shape[0] != 4 and planes.size:
        raise ValueError('its pixel table is not 4 byte planes')
    offsets = np.ascontiguousarray(planes.T).view('<u4').reshape(-1)
    regions = count * (kind == KINDS.index('region'))
    pixels = count * (kind == KINDS.index('pixel'))
    if regions.sum() != len(corners) or pixels.sum() != len(offsets):
        raise ValueError('its unit counts disagree with its units')
    region_end, pixel_end = np.cumsum(regions), np.cumsum(pixels)
    reveals = []
    for j, position in enumerate(index.tolist()):
        name = KINDS[int(kind[j])]
        if name == 'region':
            coords = corners[region_end[j] - regions[j]:region_end[j]]
        elif name == 'pixel':
            coords = np.cumsum(
                offsets[pixel_end[j] - pixels[j]:pixel_end[j]].astype(
                    np.int64))
        else:
            coords = None
        reveals.append((position,
                        Reveal(tuple(shape[j]), name, coords, side[j])))
    return reveals


class RevealedPixels:
    """Per pool image, the pixels revealed so far.

    The pixel-level twin of :class:`~mmsaal.pool.PoolState`'s
    ``labeled_round``: a pixel is never revealed twice, and the round that
    revealed it is in that round's ``revealed.npz``. Each image keeps its
    :class:`Reveal` s and a pixel count, so "is anything left" is O(1) and
    a mask is painted only when asked for. Only images with something
    revealed hold an entry.
    """

    def __init__(self) -> None:
        # Per image, (round, reveal) in the order they came.
        self._reveals: Dict[int, List[Tuple[int, Reveal]]] = {}
        self._counts: Dict[int, int] = {}

    @property
    def indices(self) -> list:
        """The pool positions with revealed pixels, sorted."""
        return sorted(self._reveals)

    def reveals(self, index: int) -> List[Reveal]:
        """What the rounds revealed in image ``index``, in order."""
        return [reveal for _, reveal in self._reveals.get(index, ())]

    def mask(self, index: int) -> Optional[np.ndarray]:
        """Bool mask of the revealed pixels of image ``index`` (None if
        nothing is)."""
        reveals = self.reveals(index)
        if not reveals:
            return None
        mask = np.zeros(reveals[0].shape, bool)
        for reveal in reveals:
            reveal.paint(mask)
        return mask

    def touched_after(self, round_idx: int) -> List[int]:
        """The images that rounds after ``round_idx`` revealed pixels of,
        sorted."""
        return sorted(i for i, reveals in self._reveals.items()
                      if reveals[-1][0] > round_idx)

    def digest(self, up_to: Optional[int] = None) -> str:
        """A short digest of what rounds up to ``up_to`` (all when None)
        revealed: it ties a checkpoint to the revealed pixels of its run."""
        digest = hashlib.sha1()
        for index in sorted(self._reveals):
            for round_idx, reveal in self._reveals[index]:
                if up_to is not None and round_idx > up_to:
                    continue
                digest.update(np.asarray(
                    [index, round_idx, KINDS.index(reveal.kind),
                     *reveal.shape, reveal.side], np.int64).tobytes())
                if reveal.coords is not None:
                    digest.update(np.ascontiguousarray(reveal.coords))
        return digest.hexdigest()[:16]

    def reveal(self, index: int, reveal, round_idx: int = -1) -> int:
        """Reveal ``reveal`` (a :class:`Reveal`, or a bool mask) in image
        ``index``, as round ``round_idx``.

        Returns:
            int: Pixels revealed.
        """
        if not isinstance(reveal, Reveal):
            reveal = Reveal.from_mask(np.asarray(reveal, dtype=bool))
        before = self.reveals(index)
        if before:
            if before[0].shape != reveal.shape:
                raise ValueError(
                    f'image {index}: a reveal of {reveal.shape} does not '
                    f'fit the revealed mask of {before[0].shape}')
            if _overlaps(before, reveal):
                twice = int((reveal.mask() & self.mask(index)).sum())
                raise ValueError(
                    f'image {index}: {twice} pixels are revealed already; '
                    f'a query must only cover hidden pixels')
        added = reveal.count()
        self._reveals.setdefault(index, []).append((round_idx, reveal))
        self._counts[index] = self._counts.get(index, 0) + added
        return added

    def num_revealed(self, indices: Optional[Iterable[int]] = None) -> int:
        indices = self._counts if indices is None else indices
        return int(sum(self._counts.get(i, 0) for i in indices))

    def load_round(self, path: str, round_idx: int = -1,
                   pool_size: Optional[int] = None) -> int:
        """Replay round ``round_idx``'s ``revealed.npz``; returns the
        pixels it revealed.

        Raises:
            WorkDirError: It names an image outside a pool of
                ``pool_size`` images.
        """
        reveals = load_reveals(path)
        outside = [index for index, _ in reveals
                   if pool_size is not None and not 0 <= index < pool_size]
        if outside:
            raise WorkDirError(
                f'{path} reveals pixels of image {outside[0]}, outside the '
                f'pool of {pool_size} images: the file is damaged or from '
                f'another pool. Restore it, or delete its round folder (and '
                f'the ones after it) to query that round again.')
        return sum(self.reveal(index, reveal, round_idx)
                   for index, reveal in reveals)
