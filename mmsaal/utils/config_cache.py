# Copyright (c) mmsaal contributors. All rights reserved.
"""What mmengine recomputes about a config, computed once a process.

- **The config's text.** mmengine formats the whole config with yapf each
  time ``Config.pretty_text`` is read: when a run starts (the log, the
  dumped ``config.py``, ``RuntimeInfoHook``) and again in every
  checkpoint's ``meta['cfg']``, 0.2-1 s for a detection config, paid per
  epoch. yapf's output depends on its input text and style alone, so the
  last :data:`KEEP` results are kept.
- **The packages' metafiles.** To find ``mmdet::x.py`` mmengine reads the
  package's ``model-index.yml`` and every metafile it lists (about a
  hundred YAML files for mmdet), for each ``pkg::`` base of each config
  it parses: 0.3-0.5 s a base. A metafile read once is kept while its
  size and modification time stay the same.

Every text and path is the one mmengine computes. ``import mmsaal`` calls
:func:`remember_config_work`.
"""
import functools
import os
from collections import OrderedDict

#: Distinct (text, style) pairs kept: a run formats one config.
KEEP = 4


def remember_config_work() -> None:
    """Make mmengine's config formatting and metafile reading remember
    their results (idempotent)."""
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils
    if not getattr(config_module.FormatCode, 'remembers', False):
        config_module.FormatCode = _remembered_format(
            config_module.FormatCode)
    if not getattr(config_utils.load, 'remembers', False):
        config_utils.load = _remembered_load(config_utils.load)


def _remembered_format(original):
    kept = OrderedDict()

    @functools.wraps(original)
    def format_code(text, style_config=None, **kwargs):
        key = (text, repr(style_config), repr(sorted(kwargs.items())))
        if key not in kept:
            kept[key] = original(text, style_config=style_config, **kwargs)
            while len(kept) > KEEP:
                kept.popitem(last=False)
        return kept[key]

    format_code.remembers = True
    return format_code


def _remembered_load(original):
    """mmengine's ``load`` for the metafiles (read, never changed, by its
    config code): a file's data is read again only when it changed."""
    kept = {}

    @functools.wraps(original)
    def load(file, *args, **kwargs):
        if args or kwargs or not isinstance(file, str):
            return original(file, *args, **kwargs)
        try:
            info = os.stat(file)
        except OSError:
            return original(file)
        key = (os.path.abspath(file), info.st_mtime_ns, info.st_size)
        if key not in kept:
            kept[key] = original(file)
        return kept[key]

    load.remembers = True
    return load
