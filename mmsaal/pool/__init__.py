# Copyright (c) mmsaal contributors. All rights reserved.
from .revealed import RevealedPixels, load_masks, save_masks
from .state import UNLABELED, PoolState, draw_initial_set, fingerprint
from .store import (RoundStore, dump_json_atomic, read_initial_file,
                    write_text_atomic)

__all__ = [
    'UNLABELED', 'PoolState', 'RevealedPixels', 'load_masks', 'save_masks', 'RoundStore', 'draw_initial_set',
    'dump_json_atomic', 'fingerprint', 'read_initial_file',
    'write_text_atomic'
]
