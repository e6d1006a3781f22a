# Copyright (c) mmsaal contributors. All rights reserved.
"""The labeled state of the pool and every file a run writes of it: what is
labeled (items, and pixels of items), since which round, persisted per
round; the revealed-pixel masks; the query files; the report."""
from .masks import (PixelLabels, check_unique_stems, image_shapes,
                    revealed_mask_path)
from .query_files import (QUERY_UNITS_FILE, load_query_units, query_listing,
                          save_query_units, write_pixel_summary,
                          write_regions)
from .report import read_report, strategy_line, write_report
from .revealed import (IGNORE_INDEX, REVEALED_FILE, Reveal, RevealedPixels,
                       load_reveals, save_reveals)
from .state import UNLABELED, PoolState, draw_initial_set, fingerprint
from .store import (RoundStore, dump_json_atomic, read_initial_file,
                    revealed_mask_dir, write_text_atomic)

__all__ = [
    'IGNORE_INDEX', 'QUERY_UNITS_FILE', 'REVEALED_FILE', 'UNLABELED',
    'PixelLabels', 'PoolState', 'Reveal',
    'RevealedPixels', 'RoundStore', 'check_unique_stems', 'draw_initial_set',
    'dump_json_atomic', 'fingerprint', 'image_shapes', 'load_query_units',
    'load_reveals', 'query_listing', 'read_initial_file', 'read_report',
    'revealed_mask_dir', 'revealed_mask_path', 'save_query_units',
    'save_reveals', 'strategy_line', 'write_pixel_summary', 'write_regions',
    'write_report', 'write_text_atomic'
]
