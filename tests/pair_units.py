"""A toy unit kind, registered outside mmsaal (tests/test_rounds/test_custom_units.py):
whole images queried in pairs, the budget rounded down to an even count. A
config imports it with ``custom_imports`` and names it as
``active_learning.granularity``."""
from mmsaal.registry import UNITS
from mmsaal.rounds.units import Budget, ImageUnits


@UNITS.register_module(name='image_pairs')
class ImagePairUnits(ImageUnits):
    """Whole images, an even number of them a round."""

    def round_budget(self, state, candidates):
        total = super().round_budget(state, candidates).total
        total -= total % 2
        return Budget(total, min_candidates=total)
