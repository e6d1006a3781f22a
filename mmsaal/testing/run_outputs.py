# Copyright (c) mmsaal contributors. All rights reserved.
"""What a run left on disk (its round files, its final weights), to compare
a resumed run with the uninterrupted one."""
import glob
import hashlib
import json
import os.path as osp
from typing import Dict, List

import torch

from mmsaal.utils import checkpoint_to_resume

# The files of a round that a resumed run must reproduce exactly.
ROUND_FILES = ('labeled.json', 'scores.json', 'revealed.npz', 'metrics.json')


def run_outputs(work_dir: str, state_dir: str = 'rounds') -> Dict[str, str]:
    """``{'round_XX/file': content}`` of every round's :data:`ROUND_FILES`,
    and ``{'final_weights': digest}`` of the model the run ended with.

    JSON files are compared by value with their wall-clock fields (keys
    ending in ``_seconds``) left out: they differ between any two runs.
    Other files by their SHA-256. The weights make the comparison see any
    difference in training, which rounded metrics can hide.
    """
    outputs = {}
    last = checkpoint_to_resume(work_dir)
    if last is not None:
        weights = torch.load(last, map_location='cpu',
                             weights_only=True)['state_dict']
        digest = hashlib.sha256()
        for name in sorted(weights):
            digest.update(name.encode())
            digest.update(weights[name].numpy().tobytes())
        outputs['final_weights'] = digest.hexdigest()
    for folder in sorted(glob.glob(osp.join(work_dir, state_dir,
                                            'round_*'))):
        for name in ROUND_FILES:
            path = osp.join(folder, name)
            if not osp.exists(path):
                continue
            key = f'{osp.basename(folder)}/{name}'
            if name.endswith('.json'):
                with open(path, encoding='utf-8') as f:
                    outputs[key] = json.dumps(
                        _without_timings(json.load(f)), sort_keys=True)
            else:
                with open(path, 'rb') as f:
                    outputs[key] = hashlib.sha256(f.read()).hexdigest()
    return outputs


def differences(reference: str, other: str,
                state_dir: str = 'rounds') -> List[str]:
    """The round files in which ``other`` differs from ``reference`` (or
    that only one of them has)."""
    want = run_outputs(reference, state_dir)
    got = run_outputs(other, state_dir)
    return [
        key for key in sorted(set(want) | set(got))
        if want.get(key) != got.get(key)
    ]


def _without_timings(value):
    if isinstance(value, dict):
        return {
            k: _without_timings(v)
            for k, v in value.items() if not k.endswith('_seconds')
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value
