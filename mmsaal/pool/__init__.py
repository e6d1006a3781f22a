# Copyright (c) mmsaal contributors. All rights reserved.
"""The labeled state of the pool and its round files: what is labeled
(items, and pixels of items), since which round, persisted per round."""
from .revealed import (IGNORE_INDEX, Reveal, RevealedPixels, load_reveals,
                       save_reveals)
from .state import UNLABELED, PoolState, draw_initial_set, fingerprint
from .store import (RoundStore, dump_json_atomic, read_initial_file,
                    revealed_mask_dir, write_text_atomic)

__all__ = [
    'IGNORE_INDEX', 'UNLABELED', 'PoolState', 'Reveal', 'RevealedPixels',
    'load_reveals', 'save_reveals', 'RoundStore', 'draw_initial_set',
    'dump_json_atomic', 'fingerprint', 'read_initial_file',
    'revealed_mask_dir', 'write_text_atomic'
]
