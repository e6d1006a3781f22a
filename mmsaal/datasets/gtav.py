# Copyright (c) mmsaal contributors. All rights reserved.
"""GTA5 (Richter et al., ECCV 2016) as a source domain for Cityscapes."""
import glob
import os.path as osp
from typing import List

import numpy as np
from mmseg.datasets import BaseSegDataset, CityscapesDataset

from mmsaal.pool import IGNORE_INDEX
from mmsaal.registry import DATASETS

#: Cityscapes label id -> train id (cityscapesScripts ``labels.py``); GTA5
#: labels use the same ids. Every id not listed maps to 255 (ignored).
LABEL_ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18
}


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes/GTA5 label-id map to the 19 train ids (255 else).

    Args:
        label_ids (np.ndarray): Integer map of label ids.

    Returns:
        np.ndarray: uint8 map of train ids.
    """
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label_id, train_id in LABEL_ID_TO_TRAIN_ID.items():
        table[label_id] = train_id
    label_ids = np.asarray(label_ids)
    if label_ids.min(initial=0) < 0 or label_ids.max(initial=0) > 255:
        raise ValueError('label ids must lie in [0, 255]')
    return table[label_ids.astype(np.int64)]


TRAIN_ID_SUFFIX = '_labelTrainIds.png'


def gta_label_files(gta_root: str) -> List[str]:
    """GTA5's label-id maps (``labels/*.png``, not the converted ones)."""
    return sorted(
        p for p in glob.glob(osp.join(gta_root, 'labels', '*.png'))
        if not p.endswith(TRAIN_ID_SUFFIX))


def convert_gta_label(path: str) -> str:
    """Write the train-id map of one GTA5 label file next to it.

    Returns:
        str: The path written (``*_labelTrainIds.png``).
    """
    from PIL import Image

    # GTA5 labels are palette images: PIL gives the palette indices, i.e.
    # the label ids.
    train_ids = label_ids_to_train_ids(np.asarray(Image.open(path)))
    out = path[:-len('.png')] + TRAIN_ID_SUFFIX
    Image.fromarray(train_ids).save(out)
    return out


@DATASETS.register_module()
class GTAVDataset(BaseSegDataset):
    """GTA5, with Cityscapes' 19 classes.

    The layout is GTA5's (``images/00001.png``, ``labels/00001.png``) after
    ``tools/dataset_converters/gta.py`` wrote the train-id maps
    (``labels/00001_labelTrainIds.png``) next to the original label ids.
    Class names and palette are Cityscapes', so a ``ConcatDataset`` of GTA5
    and Cityscapes trains one model and ``IoUMetric`` reads both.

    Args:
        img_suffix (str): Defaults to ``'.png'``.
        seg_map_suffix (str): Defaults to ``'_labelTrainIds.png'``.
        **kwargs: See ``mmseg.datasets.BaseSegDataset``.
    """
    METAINFO = CityscapesDataset.METAINFO

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = TRAIN_ID_SUFFIX,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
