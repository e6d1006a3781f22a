"""A pool sampler that crashes the process the first time it selects, to
test resuming after a crash in the middle of a round's scoring."""
import os

from mmsaal.pool_samplers import RandomSampler
from mmsaal.registry import POOL_SAMPLERS


@POOL_SAMPLERS.register_module()
class CrashOnceSampler(RandomSampler):
    """Random picks; hard exit (no clean-up) when ``marker`` does not exist.
    """

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def select(self, scores, num_candidates, budget, rng):
        if not os.path.exists(self.marker):
            open(self.marker, 'w').close()
            os._exit(3)
        return super().select(scores, num_candidates, budget, rng)
