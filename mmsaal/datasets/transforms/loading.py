# Copyright (c) mmsaal contributors. All rights reserved.
import os.path as osp
from typing import Optional

import mmcv
import numpy as np
from mmseg.datasets.transforms import LoadAnnotations

from mmsaal.pool import IGNORE_INDEX, revealed_mask_path
from mmsaal.registry import TRANSFORMS


def reads_revealed_masks(dataset) -> bool:
    """Whether ``dataset``'s pipeline loads its labels through
    :class:`LoadRevealedAnnotations`: a pool labeled pixel by pixel."""
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms',
                         [])
    return any(isinstance(t, LoadRevealedAnnotations) for t in transforms)


@TRANSFORMS.register_module()
class LoadRevealedAnnotations(LoadAnnotations):
    """Load the label map and hide every pixel that is not revealed yet.

    For target images labeled region by region: the pixels outside the
    image's revealed mask (``{revealed_dir}/{stem}.png``, written by
    ``ActiveLearningHook``, non-zero = revealed) become ``ignore_index``.
    It must come before any geometric transform, so that crops and flips
    move labels and mask together.

    Args:
        revealed_dir (str, optional): Folder of the masks. ``tools/train_al.py``
            sets it to ``{work_dir}/rounds/revealed``. Defaults to None.
        ignore_index (int): Label of hidden pixels. Defaults to 255.
        **kwargs: See mmseg's ``LoadAnnotations``.
    """

    def __init__(self,
                 revealed_dir: Optional[str] = None,
                 ignore_index: int = IGNORE_INDEX,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.revealed_dir = revealed_dir
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        super()._load_seg_map(results)
        if self.revealed_dir is None:
            raise ValueError(
                'LoadRevealedAnnotations.revealed_dir is not set: run the '
                'config with tools/train_al.py (it points it to '
                '{work_dir}/rounds/revealed) or set it in the pipeline.')
        path = revealed_mask_path(self.revealed_dir, results['img_path'])
        if not osp.exists(path):
            raise FileNotFoundError(
                f'{results["img_path"]} has no revealed pixels ({path} is '
                f'missing): only images with a revealed region may be '
                f'trained on; ActiveLearningHook writes the masks.')
        revealed = mmcv.imread(path, flag='unchanged', backend='pillow')
        seg_map = results['gt_seg_map']
        if revealed.shape != seg_map.shape:
            raise ValueError(
                f'the revealed mask {path} is {revealed.shape[:2]} but the '
                f'label map of {results["img_path"]} is {seg_map.shape}')
        results['gt_seg_map'] = np.where(revealed > 0, seg_map,
                                         self.ignore_index).astype(
                                             seg_map.dtype)

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, '
                f'revealed_dir={self.revealed_dir!r})')
