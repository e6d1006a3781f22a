# Copyright (c) mmsaal contributors. All rights reserved.
"""Find what a finished or paused run left in its work dir."""
import glob
import os.path as osp


def work_dir_config(work_dir: str) -> str:
    """The config mmengine dumped into ``work_dir`` (the only ``.py``)."""
    configs = glob.glob(osp.join(work_dir, '*.py'))
    if len(configs) != 1:
        raise SystemExit(f'cannot tell the config of {work_dir} (found '
                         f'{len(configs)} .py files): pass --config')
    return configs[0]
