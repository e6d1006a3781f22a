# Copyright (c) mmsaal contributors. All rights reserved.
"""One yapf pass per config text in a run.

mmengine formats the whole config with yapf each time
``Config.pretty_text`` is read: when the run starts (the log, the dumped
``config.py``, ``RuntimeInfoHook``) and again in every checkpoint's
``meta['cfg']``. That pass costs 0.2-1 s for a detection config, paid per
epoch. yapf's output depends on its input text and style alone, so
:func:`format_config_text_once` keeps the last few results: every text
written is the one mmengine writes, computed once.
"""
import functools
from collections import OrderedDict

from mmengine.config import config as mmengine_config

#: Distinct (text, style) pairs kept: a run formats one config.
KEEP = 4


def format_config_text_once() -> None:
    """Make mmengine's config formatting remember its last :data:`KEEP`
    results (idempotent)."""
    original = mmengine_config.FormatCode
    if getattr(original, 'remembers', False):
        return
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
    mmengine_config.FormatCode = format_code
