# Copyright (c) mmsaal contributors. All rights reserved.
"""``_base_ = 'mmsaal::...'``: mmsaal's configs by package name, as
``mmdet::`` names mmdet's.

mmengine finds ``pkg::path`` in the installed package's ``.mim/configs``
(which ``setup.py`` fills at install, as mmpretrain's does), for the
packages of its ``MODULE2PACKAGE`` table only. :func:`register_config_scope`
adds ``mmsaal`` to that table and makes two narrow exceptions for the
``mmsaal`` scope alone; every other path goes through mmengine's own code
unchanged:

- an ``mmsaal::`` path may name a config at the top of ``configs/``
  (``mmsaal::saal_faster_rcnn_voc.py``), which mmengine 0.10's check of
  the path (``package::folder/name``) would refuse;
- the package's folder is the one of the ``mmsaal`` imported, where
  mmengine would ask ``pkg_resources`` for the distribution's location:
  for an editable install (PEP 660) that is ``site-packages``, which holds
  no ``mmsaal/``.

``import mmsaal`` calls it.
"""
import os.path as osp
from typing import Tuple

SCOPE = 'mmsaal'


def installed_configs() -> str:
    """The folder ``mmsaal::`` paths are read from."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim',
                    'configs')


def register_config_scope() -> None:
    """Make ``mmsaal::`` config paths resolve (idempotent)."""
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault(SCOPE, SCOPE)
    original = config_module._get_package_and_cfg_path
    if getattr(original, 'mmsaal_scope', False):
        return

    def get_package_and_cfg_path(cfg_path: str) -> Tuple[str, str]:
        package, separator, name = cfg_path.partition('::')
        if separator and package == SCOPE and '/' not in name and \
                '::' not in name:
            return SCOPE, name
        return original(cfg_path)

    installed_path = config_module.get_installed_path

    def get_installed_path(package: str) -> str:
        if package == SCOPE:
            return osp.dirname(osp.dirname(installed_configs()))
        return installed_path(package)

    get_package_and_cfg_path.mmsaal_scope = True
    config_module._get_package_and_cfg_path = get_package_and_cfg_path
    config_module.get_installed_path = get_installed_path
