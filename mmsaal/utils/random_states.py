# Copyright (c) mmsaal contributors. All rights reserved.
"""The state of every global random generator, as data a checkpoint holds.

Training, validation and scoring draw from python's ``random``, numpy's
global generator and torch's CPU (and CUDA) generators. A resumed run gives
the uninterrupted run's results only if each of them continues from where
the uninterrupted run was, so :func:`capture` turns them into plain lists,
ints and uint8 tensors, which ``torch.load(weights_only=True)`` reads
without unpickling anything, and :func:`restore` puts them back.
"""
import random
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size

KEYS = ('python', 'numpy', 'torch', 'cuda')


def capture() -> Dict:
    """The current state of the global generators."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(
        python=dict(version=version, words=list(words), gauss=gauss),
        numpy=dict(
            kind=str(kind),
            keys=keys.astype(np.int64).tolist(),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached=float(cached)),
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() else [])


def capture_every_rank() -> List[Dict]:
    """:func:`capture` on every rank, in rank order, on every rank (a
    collective: all ranks call it)."""
    return all_gather_object(capture())


def this_rank(states: Optional[List[Dict]]) -> Optional[Dict]:
    """This rank's entry of :func:`capture_every_rank`'s list, or None when
    there is none or it was written by a run with another number of
    ranks."""
    if not states or len(states) != get_world_size():
        return None
    return states[get_rank()]


def restore(states: Dict) -> None:
    """Set the global generators to a state :func:`capture` returned.

    CUDA states are restored only when the run has as many devices as the
    one that saved them (a CPU run resumed on a GPU keeps its CUDA seeds).
    """
    missing = [key for key in KEYS if key not in states]
    if missing:
        raise KeyError(f'random states without {missing}: not written by '
                       f'mmsaal.utils.random_states.capture')
    py = states['python']
    random.setstate((py['version'], tuple(py['words']), py['gauss']))
    state = states['numpy']
    np.random.set_state(
        (state['kind'], np.asarray(state['keys'], dtype=np.uint32),
         state['pos'], state['has_gauss'], state['cached']))
    torch.set_rng_state(states['torch'])
    cuda = states['cuda']
    if cuda and torch.cuda.is_available() and \
            len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A seed that depends on ``(seed, epoch, rank)`` only: the base seed of
    an epoch's data-loading workers (each adds its worker id)."""
    sequence = np.random.SeedSequence([seed % 2**32, epoch, rank])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])
