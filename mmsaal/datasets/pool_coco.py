# Copyright (c) mmsaal contributors. All rights reserved.
import logging
import os
import os.path as osp
from typing import List, Sequence

from mmdet.datasets import CocoDataset
from mmengine.logging import print_log

from mmsaal.registry import DATASETS
from mmsaal.utils.errors import DataError
from mmsaal.utils.images import image_size
from .label_files import CocoLabelFile
from .label_files.coco import is_labeled

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
    on. No item is filtered out. ``tools/import_labels.py`` and Label
    Studio add a person's labels to the file (:class:`CocoLabelFile`).

    Args:
        empty_images (str): What an image the file lists without a box is:
            ``'labeled'`` (an image with no object) or ``'unlabeled'``
            (a COCO file that lists every image and boxes some of them).
            Either way an image's ``"labeled": true / false`` in the file
            decides; imports mark the images they label so in
            ``'unlabeled'`` files. Defaults to ``'labeled'``.
        img_suffixes (Sequence[str]): File endings that count as images.
        skip_unreadable (bool): Leave out, with a warning that names them,
            the unlabeled images that are no image PIL reads or have more
            pixels than mmsaal decodes, instead of refusing to start. An
            image mended later then joins the pool, which a resumed run
            refuses as another dataset: mend them before the first start,
            or start again. Defaults to False.
        **kwargs: See mmdet's ``CocoDataset``.
    """

    label_files = CocoLabelFile

    def __init__(self,
                 *args,
                 empty_images: str = 'labeled',
                 img_suffixes: Sequence[str] = IMAGE_SUFFIXES,
                 skip_unreadable: bool = False,
                 **kwargs) -> None:
        if empty_images not in ('labeled', 'unlabeled'):
            raise ValueError(
                f"{type(self).__name__}.empty_images must be 'labeled' or "
                f"'unlabeled', not {empty_images!r}")
        self.empty_images = empty_images
        self.img_suffixes = tuple(img_suffixes)
        self.skip_unreadable = skip_unreadable
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img', self.data_root)
        labeled = {}
        if self.ann_file and osp.isfile(self.ann_file):
            labeled = {
                osp.normpath(info['img_path']): info
                for info in super().load_data_list()
            }
        data_list, skipped = [], []
        for name in list_images(img_dir, self.img_suffixes):
            path = osp.join(img_dir, name)
            info = labeled.pop(osp.normpath(path), None)
            if info is None:
                try:
                    width, height = image_size(path)
                except DataError as err:
                    if not self.skip_unreadable:
                        raise DataError(
                            f'{err} Or leave such images out of the pool: '
                            f'skip_unreadable=True on the pool dataset '
                            f'({type(self).__name__}).') from None
                    skipped.append(path)
                    continue
                info = dict(
                    img_path=path, img_id=None, seg_map_path=None,
                    height=height, width=width, instances=[])
            info['labeled'] = info.get('img_id') is not None and is_labeled(
                info.pop('labeled_mark', {}), len(info['instances']),
                self.empty_images == 'unlabeled')
            info['file_name'] = name
            data_list.append(info)
        if skipped:
            print_log(
                f'{type(self).__name__}: left {len(skipped)} unreadable '
                f'images out of the pool (skip_unreadable=True): '
                f'{", ".join(skipped[:10])}'
                + (' ...' if len(skipped) > 10 else ''),
                logger='current', level=logging.WARNING)
        if labeled:
            raise ValueError(
                f'{self.ann_file} labels images that are not in {img_dir}: '
                f'{sorted(labeled)[:5]}; file_name must be relative to the '
                f'image folder')
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict:
        info = super().parse_data_info(raw_data_info)
        image = raw_data_info['raw_img_info']
        # The file's own word on the image, read by is_labeled.
        info['labeled_mark'] = {'labeled': image['labeled']} if \
            'labeled' in image else {}
        return info

    def filter_data(self) -> List[dict]:
        """Keep every item: the pool must not change as labels arrive."""
        return self.data_list
