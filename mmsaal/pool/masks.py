# Copyright (c) mmsaal contributors. All rights reserved.
"""The revealed-pixel masks of a pool labeled pixel by pixel: one 1-bit PNG
per revealed image, named by its file stem, that
``LoadRevealedAnnotations`` reads."""
import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmsaal.utils.files import atomic_write
from mmsaal.utils.images import image_sizes
from mmsaal.utils.threads import in_threads
from .revealed import Reveal
from .state import PoolState
from .store import dump_json_atomic

Shape = Tuple[int, int]


def revealed_mask_path(revealed_dir: str, img_path: str) -> str:
    """Where the revealed-pixel mask of an image lives: its file stem as a
    PNG under ``revealed_dir``."""
    stem = osp.splitext(osp.basename(img_path))[0]
    return osp.join(revealed_dir, f'{stem}.png')


class PixelLabels:
    """The pixel side of a pool labeled pixel by pixel (domain-adaptive
    segmentation): image sizes, what a query reveals, and the masks that
    ``LoadRevealedAnnotations`` reads.

    The masks are 1-bit PNGs, one per revealed image, in ``mask_dir``.
    ``EXPORTED`` there names the last round whose masks are all written,
    so a resume writes only what a kill left unwritten.

    Args:
        paths (Sequence[str]): The pool's image paths.
        mask_dir (str): Where the masks are exported.
        shapes (Sequence[tuple], optional): ``(height, width)`` of each
            image when known; else read from the files when first needed.
    """

    #: The export's own record in ``mask_dir`` (not an image stem: those
    #: never start with a dot here).
    EXPORTED = '.exported.json'

    def __init__(self,
                 paths: Sequence[str],
                 mask_dir: str,
                 shapes: Optional[Sequence[Shape]] = None) -> None:
        check_unique_stems(paths)
        self.paths = list(paths)
        self.mask_dir = mask_dir
        self._shapes = None if shapes is None else [tuple(s) for s in shapes]

    @property
    def shapes(self) -> List[Shape]:
        """``(height, width)`` of every pool image, read once."""
        if self._shapes is None:
            self._shapes = image_shapes(self.paths)
        return self._shapes

    def labeled_fraction(self, state: PoolState) -> float:
        return state.revealed.num_revealed() / max(
            sum(h * w for h, w in self.shapes), 1)

    def progress(self, state: PoolState) -> Dict:
        return dict(
            labeled_pixel_fraction=round(self.labeled_fraction(state), 6))

    def whole(self, indices: Sequence[int]) -> Iterator[Tuple[int, Reveal]]:
        """Reveals of the images ``indices`` entirely."""
        for index in indices:
            yield int(index), Reveal(self.shapes[index])

    def mask_path(self, index: int) -> str:
        return revealed_mask_path(self.mask_dir, self.paths[index])

    def export(self, state: PoolState,
               indices: Optional[Sequence[int]] = None) -> None:
        """Write the masks of ``indices`` (all when None) where
        ``LoadRevealedAnnotations`` reads them, then record the round as
        exported; a full export also removes masks of images no longer
        revealed (e.g. a deleted round). Called on the main process
        only."""
        os.makedirs(self.mask_dir, exist_ok=True)
        revealed = state.revealed.indices
        wanted = revealed if indices is None else [int(i) for i in indices]

        def write(index: int) -> None:
            ok, png = cv2.imencode(
                '.png', state.revealed.mask(index).view(np.uint8),
                [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_BILEVEL, 1])
            if not ok:
                raise OSError(f'cannot encode the mask of {self.paths[index]}')
            with atomic_write(self.mask_path(index)) as f:
                f.write(png.tobytes())

        in_threads(write, wanted)
        if indices is None:
            # Only masks this export writes are removed: the mask names of
            # the pool's images, never another file of the folder (it may
            # be a link to one of the user's).
            keep = {osp.basename(self.mask_path(i)) for i in revealed}
            ours = {osp.basename(self.mask_path(i))
                    for i in range(len(self.paths))}
            for name in os.listdir(self.mask_dir):
                path = osp.join(self.mask_dir, name)
                if name in ours and name not in keep and \
                        osp.isfile(path) and not osp.islink(path):
                    os.remove(path)
        dump_json_atomic(dict(round=state.round),
                         osp.join(self.mask_dir, self.EXPORTED))

    def export_missing(self, state: PoolState) -> int:
        """On resume: write the masks that the last export did not finish
        (every mask when it left no record). Returns how many."""
        record = osp.join(self.mask_dir, self.EXPORTED)
        try:
            with open(record, encoding='utf-8') as f:
                exported = int(json.load(f)['round'])
        except (OSError, ValueError, KeyError, TypeError):
            exported = None
        if exported is None or exported > state.round:
            self.export(state)
            return len(state.revealed.indices)
        present = set(os.listdir(self.mask_dir))
        wanted = set(state.revealed.touched_after(exported))
        wanted.update(i for i in state.revealed.indices
                      if osp.basename(self.mask_path(i)) not in present)
        self.export(state, sorted(wanted))
        return len(wanted)


def check_unique_stems(paths: Sequence[str]) -> None:
    """Masks are named by image stem: two pool images may not share one."""
    seen: Dict[str, str] = {}
    for path in paths:
        stem = osp.splitext(osp.basename(path))[0]
        if stem in seen:
            raise ValueError(
                f'{seen[stem]} and {path} share the file name {stem!r}; '
                f'region queries name revealed masks by file name, so pool '
                f'images need distinct names')
        seen[stem] = path


def image_shapes(paths: Sequence[str]) -> List[Shape]:
    """``(height, width)`` of each image, from the file headers."""
    return [(height, width) for width, height in image_sizes(paths)]
