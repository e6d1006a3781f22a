# Copyright (c) mmsaal contributors. All rights reserved.
from .agreement import rank_correlation, top_k_overlap
from .curves import (area_under_curve, load_curve, plot_curves,
                     run_strategy, summarize_curves, write_curves_csv)
from .reveals import (empty_query_shares, format_empty_query_shares,
                      format_reveal_shares, reveal_shares, revealed_classes)
from .score_spread import format_score_spread, round_score_stats, score_spread

__all__ = [
    'area_under_curve', 'format_reveal_shares', 'load_curve', 'plot_curves',
    'rank_correlation', 'reveal_shares', 'revealed_classes',
    'summarize_curves', 'top_k_overlap', 'write_curves_csv',
    'format_score_spread', 'round_score_stats', 'score_spread',
    'empty_query_shares', 'format_empty_query_shares', 'run_strategy'
]
