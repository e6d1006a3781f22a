# Copyright (c) mmsaal contributors. All rights reserved.
"""One active-learning round, in four steps, each in its own module:

1. ``score``: run the strategy over the pool candidates (eval mode,
   sharded over ranks), on the pool dataset of ``pool_dataset``;
2. select: the strategy's own ``select`` over the candidate units of
   ``units`` (whole images, or regions / pixels of images);
3. label: the oracle of ``active_learning.oracle`` (``mmsaal.oracles``,
   a registry) labels the query;
4. ``record``: the round folder, the metrics and the report.

``pipeline.RoundPipeline`` strings them together; it needs no Runner.
``build.build_round_pipeline`` assembles one from the ``active_learning``
fields (``settings.ActiveLearningSettings``).
"""
from .build import build_round_pipeline
from .fields import check_against_pool, check_amount, check_fields
from .pipeline import RoundPipeline
from .pool_dataset import (build_pool_dataset, item_names, labels_present,
                           pool_dataset_cfg)
from .record import RoundRecorder, summary_table
from .score import score_candidates, score_in_eval_mode, unwrap_model
from .settings import ActiveLearningSettings
from .units import (Budget, ImageUnits, PixelUnits, Query, UnitTable, count,
                    pick_units)

__all__ = [
    'ActiveLearningSettings', 'build_round_pipeline', 'Budget', 'ImageUnits',
    'PixelUnits', 'Query', 'RoundPipeline', 'RoundRecorder',
    'UnitTable', 'build_pool_dataset',
    'check_against_pool', 'check_amount', 'check_fields', 'count',
    'item_names', 'labels_present', 'pick_units', 'pool_dataset_cfg',
    'score_candidates', 'score_in_eval_mode', 'summary_table',
    'unwrap_model'
]
