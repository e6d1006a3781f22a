# Copyright (c) mmsaal contributors. All rights reserved.
from .curves import (area_under_curve, load_curve, plot_curves,
                     summarize_curves, write_curves_csv)

__all__ = [
    'area_under_curve', 'load_curve', 'plot_curves', 'summarize_curves',
    'write_curves_csv'
]
