# Copyright (c) mmsaal contributors. All rights reserved.
import os.path as osp
from typing import List, Union

from mmdet.datasets import VOCDataset

from mmsaal.registry import DATASETS
from mmsaal.utils.images import image_size
from .label_files import VOCLabelFiles


@DATASETS.register_module()
class PoolVOCDataset(VOCDataset):
    """PASCAL VOC as a pool that is labeled as its XML files arrive.

    Every image of ``ann_file`` (``ImageSets/Main/trainval.txt``) is an
    item, in its order, whether ``Annotations/<id>.xml`` exists or not: an
    image without one is unlabeled (no instances; its size comes from the
    image's header), is scored, and is never trained on until its XML is
    there. With ``oracle='human'`` a person writes the
    XMLs of the queried images (any VOC annotation tool does) and resumes;
    the data stays a VOC folder that plain mmdet reads once every image is
    labeled. No item is filtered out (``filter_cfg`` is not applied): the
    pool must not change as labels arrive. ``tools/import_labels.py`` and
    Label Studio write the XMLs (:class:`VOCLabelFiles`).

    Args:
        **kwargs: See mmdet's ``VOCDataset``.
    """

    label_files = VOCLabelFiles

    def parse_data_info(self, img_info: dict) -> Union[dict, List[dict]]:
        # Whether an item is labeled is asked of its xml_path on disk, so
        # an XML a person adds while the run waits counts at once.
        if osp.exists(img_info['xml_path']):
            return super().parse_data_info(img_info)
        img_path = osp.join(self.sub_data_root, img_info['file_name'])
        width, height = image_size(img_path)
        return dict(img_path=img_path, img_id=img_info['img_id'],
                    xml_path=img_info['xml_path'], width=width,
                    height=height, instances=[])

    def filter_data(self) -> List[dict]:
        """Keep every item: the pool must not change as labels arrive."""
        return self.data_list
