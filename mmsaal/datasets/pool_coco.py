# Copyright (c) mmsaal contributors. All rights reserved.
import os
import os.path as osp
from typing import List, Sequence

from mmdet.datasets import CocoDataset

from mmsaal.registry import DATASETS
from mmsaal.utils.images import image_size

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def list_images(folder: str,
                suffixes: Sequence[str] = IMAGE_SUFFIXES) -> List[str]:
    """Every image under ``folder`` (recursively), as sorted relative paths.
    """
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            if name.lower().endswith(tuple(suffixes)):
                found.append(osp.relpath(osp.join(root, name), folder))
    return sorted(found)


@DATASETS.register_module()
class PoolCocoDataset(CocoDataset):
    """A folder of images as the pool, labeled by a COCO file as labels come.

    Every image under ``data_prefix['img']`` is an item, in sorted order,
    whether labeled or not, so the pool never changes while annotations
    arrive (``oracle='human'``). ``ann_file`` (COCO format, ``file_name``
    relative to the image folder) labels some of them; it may not exist
    yet. An image listed in it is labeled (``labeled=True``), even with no
    box; the others carry no instances and are only scored, never trained
    on. No item is filtered out.

    Args:
        img_suffixes (Sequence[str]): File endings that count as images.
        **kwargs: See mmdet's ``CocoDataset``.
    """

    def __init__(self,
                 *args,
                 img_suffixes: Sequence[str] = IMAGE_SUFFIXES,
                 **kwargs) -> None:
        self.img_suffixes = tuple(img_suffixes)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img', self.data_root)
        labeled = {}
        if self.ann_file and osp.isfile(self.ann_file):
            labeled = {
                osp.normpath(info['img_path']): info
                for info in super().load_data_list()
            }
        data_list = []
        for name in list_images(img_dir, self.img_suffixes):
            path = osp.join(img_dir, name)
            info = labeled.pop(osp.normpath(path), None)
            if info is None:
                width, height = image_size(path)
                info = dict(
                    img_path=path, img_id=None, seg_map_path=None,
                    height=height, width=width, instances=[])
            info['labeled'] = info.get('img_id') is not None
            info['file_name'] = name
            data_list.append(info)
        if labeled:
            raise ValueError(
                f'{self.ann_file} labels images that are not in {img_dir}: '
                f'{sorted(labeled)[:5]}; file_name must be relative to the '
                f'image folder')
        return data_list

    def filter_data(self) -> List[dict]:
        """Keep every item: the pool must not change as labels arrive."""
        return self.data_list
