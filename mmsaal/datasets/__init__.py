# Copyright (c) mmsaal contributors. All rights reserved.
from .gtav import (GTAVDataset, convert_gta_label, gta_label_files,
                   label_ids_to_train_ids)
from .pool_coco import PoolCocoDataset, list_images
from .pool_image_folder import PoolImageFolder
from .pool_voc import PoolVOCDataset
from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403

__all__ = [
    'GTAVDataset', 'convert_gta_label', 'gta_label_files',
    'label_ids_to_train_ids', 'PoolCocoDataset', 'PoolImageFolder',
    'PoolVOCDataset',
    'list_images'
]
