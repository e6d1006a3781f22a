# Copyright (c) mmsaal contributors. All rights reserved.
"""Region- and pixel-level queries over a segmentation pool."""
import os
import os.path as osp
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import cv2
import numpy as np
import torch
from mmengine.utils import ProgressBar

from mmsaal.datasets.transforms import revealed_mask_path
from mmsaal.pool import PoolState, RevealedPixels, RoundStore, save_masks
from mmsaal.pool.store import dump_json_atomic
from mmsaal.regions import (rank_units, take_pool_wide, unit_area,
                            units_mask, units_per_image)

Shape = Tuple[int, int]
IGNORE_INDEX = 255


class PixelQuery:
    """What ``ActiveLearningHook`` does for ``granularity='region'|'pixel'``.

    The budget is a fraction of the pool's pixels per round, spent in units
    of ``region_size x region_size`` windows (or single pixels). With
    ``budget_per_image`` every image gets its equal share (RIPU's setting),
    otherwise the units are ranked over the whole pool. What is revealed
    lives in a :class:`~mmsaal.pool.RevealedPixels`, persisted as
    ``round_XX/revealed.npz`` (replayed on resume) with the queried units in
    ``round_XX/regions.json``, and exported as one PNG mask per image under
    ``{rounds}/revealed/`` for ``LoadRevealedAnnotations``.

    Args:
        granularity (str): ``'region'`` or ``'pixel'``.
        region_size (int): Side of a region in pixels of the label map.
        budget_per_image (bool): Equal share per image, or pool-wide.
        store (RoundStore): The round folders.
    """

    def __init__(self, granularity: str, region_size: int,
                 budget_per_image: bool, store: RoundStore) -> None:
        self.granularity = granularity
        self.region_size = region_size
        self.budget_per_image = budget_per_image
        self.store = store
        self.revealed = RevealedPixels()
        self.mask_dir = osp.join(store.root, 'revealed')

    @property
    def area(self) -> int:
        return unit_area(self.granularity, self.region_size)

    # ------------------------------------------------------------- budget
    def total_units(self, shapes: Sequence[Shape], fraction: float) -> int:
        """Units a round labels pool-wide."""
        return units_per_image(sum(h * w for h, w in shapes), fraction,
                               self.area)

    def max_units(self, shape: Shape, fraction: float,
                  total_units: int) -> int:
        """The most units one image can get this round."""
        if self.budget_per_image:
            return units_per_image(shape[0] * shape[1], fraction, self.area)
        return total_units

    def labeled_fraction(self, shapes: Sequence[Shape]) -> float:
        return self.revealed.num_revealed() / max(
            sum(h * w for h, w in shapes), 1)

    def has_hidden(self, index: int, shape: Shape) -> bool:
        return self.revealed.num_revealed([index]) < shape[0] * shape[1]

    # ---------------------------------------------------------- selection
    def rank(self, score_map: torch.Tensor, index: int,
             max_units: int) -> Dict:
        """An image's best units, greedy, avoiding revealed pixels."""
        blocked = self.revealed.mask(index)
        return rank_units(
            score_map.float(), self.granularity, self.region_size, max_units,
            None if blocked is None else torch.from_numpy(blocked))

    def select(self, ranked: Dict[int, Dict],
               total_units: int) -> Dict[int, Dict]:
        """The units the round labels: each image's share, or the pool-wide
        best ``total_units``.

        Returns:
            dict[int, dict]: Per pool position, ``corners`` ``(K, 2)`` and
            ``scores`` ``(K,)`` of its units, best first.
        """
        if self.budget_per_image:
            taken = {i: len(units['scores']) for i, units in ranked.items()}
        else:
            taken = take_pool_wide(ranked, total_units)
        return {
            i: dict(
                corners=ranked[i]['corners'][:n],
                scores=[float(v) for v in ranked[i]['scores'][:n]])
            for i, n in sorted(taken.items()) if n
        }

    @staticmethod
    def units_to_json(units: Dict[int, Dict]) -> Dict:
        return {
            str(i): dict(
                corners=np.asarray(u['corners']).tolist(),
                scores=list(u['scores']))
            for i, u in units.items()
        }

    @staticmethod
    def units_from_json(data: Dict) -> Dict[int, Dict]:
        return {
            int(i): dict(
                corners=np.asarray(u['corners'], np.int64).reshape(-1, 2),
                scores=list(u['scores']))
            for i, u in data.items()
        }

    def units_labeled(self, label_path: str, chosen: Dict) -> bool:
        """Whether a person's label map covers the queried units: each
        region holds a labeled (not ``ignore_index``) pixel, each queried
        pixel is labeled."""
        if not osp.exists(label_path):
            return False
        labels = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        side = self.region_size if self.granularity == 'region' else 1
        return all((labels[y:y + side, x:x + side] != IGNORE_INDEX).any()
                   for y, x in np.asarray(chosen['corners']).reshape(-1, 2))

    def delta_masks(self, units: Dict[int, Dict], shapes: Sequence[Shape],
                    whole: Sequence[int] = ()) -> Iterator[Tuple[int,
                                                                 np.ndarray]]:
        """``(pool position, bool mask)`` of what the units (and the
        ``whole`` images) cover, one image at a time."""
        for index in whole:
            yield int(index), np.ones(shapes[index], dtype=bool)
        for index, chosen in units.items():
            yield index, units_mask(shapes[index], chosen['corners'],
                                    self.granularity, self.region_size)

    def reveal(self, units: Dict[int, Dict], shapes: Sequence[Shape],
               whole: Sequence[int] = ()) -> int:
        """Reveal the chosen units (and whole images, e.g. an initial set);
        returns the pixels revealed."""
        return sum(
            self.revealed.reveal(index, mask)
            for index, mask in self.delta_masks(units, shapes, whole))

    # -------------------------------------------------------- persistence
    def writers(self,
                round_idx: int,
                units: Dict[int, Dict],
                names: Sequence[str],
                shapes: Sequence[Shape],
                whole: Sequence[int] = ()) -> Dict[str, Callable[[str],
                                                                 None]]:
        """The round's extra files, for ``RoundStore.save_round``:
        ``revealed.npz`` (what the round revealed) and ``regions.json``."""
        return {
            'revealed.npz':
            lambda path: save_masks(path,
                                    self.delta_masks(units, shapes, whole)),
            'regions.json':
            self.regions_writer(round_idx, units, names)
        }

    def regions_writer(self, round_idx: int, units: Dict[int, Dict],
                       names: Sequence[str]) -> Callable[[str], None]:
        """Writes ``regions.json``: the queried units of every image with
        their scores, what an annotator works from."""
        side = self.region_size if self.granularity == 'region' else 1

        def regions(path: str) -> None:
            dump_json_atomic(
                dict(
                    round=round_idx,
                    granularity=self.granularity,
                    size=side,
                    items=[
                        dict(
                            index=index,
                            name=names[index],
                            # [y, x, height, width] in label-map pixels
                            regions=[[int(y), int(x), side, side]
                                     for y, x in chosen['corners']],
                            scores=[float(v) for v in chosen['scores']])
                        for index, chosen in units.items()
                    ]), path)

        return regions

    def restore(self, state: PoolState, latest: int) -> None:
        """Replay ``revealed.npz`` of rounds ``0..latest``, checking that the
        images with revealed pixels are exactly the labeled ones."""
        for round_idx in range(latest + 1):
            self.revealed.load_round(
                osp.join(self.store.round_dir(round_idx), 'revealed.npz'))
        if self.revealed.indices != state.labeled_indices().tolist():
            raise RuntimeError(
                f'the revealed masks in {self.store.root} cover other images '
                f'than the labeled set of round {latest}: the round folders '
                f'were edited by hand. Restore them.')

    def export_masks(self, paths: Sequence[str],
                     indices: Optional[Sequence[int]] = None) -> None:
        """Write the masks of ``indices`` (all when None) as PNGs where
        ``LoadRevealedAnnotations`` reads them; a full export also removes
        masks of images no longer revealed (e.g. a deleted round)."""
        os.makedirs(self.mask_dir, exist_ok=True)
        revealed = self.revealed.indices
        wanted = revealed if indices is None else list(indices)
        # Called on the main process only; a resume rewrites every mask.
        progress = ProgressBar(len(wanted)) if len(wanted) > 100 else None
        for index in wanted:
            if progress is not None:
                progress.update()
            path = revealed_mask_path(self.mask_dir, paths[index])
            tmp = f'{path[:-4]}.tmp{os.getpid()}.png'
            if not cv2.imwrite(tmp,
                               self.revealed.mask(index).astype(np.uint8)):
                raise OSError(f'cannot write {tmp}')
            os.replace(tmp, path)
        if indices is None:
            keep = {
                osp.basename(revealed_mask_path(self.mask_dir, paths[i]))
                for i in revealed
            }
            for name in os.listdir(self.mask_dir):
                if name not in keep:
                    os.remove(osp.join(self.mask_dir, name))


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
    from PIL import Image
    shapes = []
    for path in paths:
        with Image.open(path) as img:
            shapes.append((img.height, img.width))
    return shapes
