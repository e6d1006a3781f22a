# Copyright (c) mmsaal contributors. All rights reserved.
import os.path as osp
from typing import List

from mmpretrain.datasets import CustomDataset

from mmsaal.registry import DATASETS
from mmsaal.utils.errors import DataError
from .label_files import ClassFolders
from .label_files.class_folders import class_folders
from .pool_coco import list_images


@DATASETS.register_module()
class PoolImageFolder(CustomDataset):
    """Class folders and an ``unlabeled/`` folder beside them as the pool.

    The layout of mmpretrain's ``CustomDataset``, ``{data_prefix}/{class}/
    ...``, plus the images to label in ``{data_prefix}/unlabeled/``. Every
    image of both is an item; one in a class folder is labeled with that
    class, one in ``unlabeled/`` is scored and never trained on. An image's
    identity is its path inside its folder (``unlabeled/a/1.png`` and
    ``cat/a/1.png`` are one item), so labeling it is moving it into its
    class's folder, by hand or by ``tools/import_labels.py`` and Label
    Studio (:class:`ClassFolders`), and the pool keeps its items, in the
    order of those paths. Plain mmpretrain reads the class folders as ever
    once ``unlabeled/`` is empty and gone.

    Args:
        unlabeled_folder (str): The folder of the images to label.
            Defaults to ``'unlabeled'``.
        **kwargs: See mmpretrain's ``CustomDataset`` (no ``ann_file``).
            ``metainfo=dict(classes=...)`` names the classes (a class with
            no image yet has no folder); by default they are the folders.
    """

    label_files = ClassFolders

    def __init__(self, *args, unlabeled_folder: str = 'unlabeled',
                 **kwargs) -> None:
        self.unlabeled_folder = unlabeled_folder
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.ann_file:
            raise DataError(
                f'{type(self).__name__} reads its labels from the class '
                f'folders: remove ann_file ({self.ann_file}).')
        root = self.img_prefix
        folders = class_folders(root, self.unlabeled_folder)
        classes = self._metainfo.get('classes')
        if classes is None:
            classes = tuple(folders)
            self._metainfo['classes'] = classes
        stray = sorted(set(folders) - set(classes))
        if stray:
            raise DataError(
                f'{root} has folders that are no class of the pool '
                f'({stray[:5]}; classes {list(classes)}): add them to '
                f'metainfo classes, or move them away.')
        items, seen = [], {}
        for label, folder in [(-1, self.unlabeled_folder)] + list(
                enumerate(classes)):
            for name in list_images(osp.join(root, folder),
                                    self.extensions):
                if name in seen:
                    raise DataError(
                        f'{osp.join(folder, name)} and '
                        f'{osp.join(seen[name], name)} are one image of the '
                        f'pool (the same path inside their folders): keep '
                        f'one.')
                seen[name] = folder
                info = dict(img_path=osp.join(root, folder, name),
                            file_name=name, pool_name=name,
                            labeled=label >= 0)
                if label >= 0:
                    info['gt_label'] = label
                items.append(info)
        if not items:
            raise DataError(f'{root} holds no image in its class folders '
                            f'or {self.unlabeled_folder}/.')
        return sorted(items, key=lambda info: info['pool_name'])
