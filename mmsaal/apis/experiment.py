# Copyright (c) mmsaal contributors. All rights reserved.
"""What a work dir's experiment is, so that ``--resume`` cannot change it.

At the first start, the config fields that decide a run's results are
written to ``{work_dir}/{state_dir}/experiment.json``. ``--resume`` with a
config that changes any of them is refused, naming the fields: a resumed
run must be the run the work dir holds. Fields that only say how to run
(logging, checkpoint intervals, scoring workers, ``num_rounds`` to extend
a run) may change.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config

from mmsaal.oracles import free_fields
from mmsaal.pool import RoundStore, dump_json_atomic
from mmsaal.utils.errors import WorkDirError
from .config import state_root

EXPERIMENT_FILE = 'experiment.json'
# Top-level config fields whose change changes the run's results.
EXPERIMENT_FIELDS = ('active_learning', 'randomness', 'model', 'optim_wrapper',
                     'param_scheduler', 'train_dataloader', 'train_cfg',
                     'val_dataloader', 'val_evaluator')
# Fields whose value is made from the work dir's path.
WORK_DIR_FIELDS = ('.revealed_dir', )
# Dotted fields inside them that may change on resume (and each oracle's
# FREE_FIELDS: where its labels come from, not what is labeled).
FREE_FIELDS = ('active_learning.num_rounds', 'active_learning.state_dir',
               'active_learning.pool_dataloader.num_workers',
               'train_cfg.max_epochs', 'train_dataloader.num_workers',
               'val_dataloader.num_workers',
               'val_dataloader.persistent_workers')


def experiment_fields(cfg: Config) -> Dict[str, object]:
    """The result-deciding fields of ``cfg``, flat (``'a.b.0.c': value``,
    list items by position), as JSON values."""
    data = cfg.to_dict()
    flat: Dict[str, object] = {}
    for field in EXPERIMENT_FIELDS:
        if data.get(field) is not None:
            flat.update(flatten(
                field, json.loads(json.dumps(data[field], default=repr))))
    return flat


def flatten(prefix: str, value,
            free: Optional[Tuple[str, ...]] = None) -> Dict[str, object]:
    """``value`` flat under ``prefix``, without the fields that may change
    (``free``: :data:`FREE_FIELDS` and the registered oracles' own) or that
    a work dir's path decides (a moved or copied work dir resumes)."""
    free = FREE_FIELDS + free_fields() if free is None else free
    flat: Dict[str, object] = {}
    if isinstance(value, dict) or (isinstance(value, list) and any(
            isinstance(v, (dict, list)) for v in value)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, inner in sorted(items, key=lambda kv: str(kv[0])):
            flat.update(flatten(f'{prefix}.{key}', inner, free))
        if not value:
            flat[prefix] = value
    elif prefix not in free and not prefix.endswith(WORK_DIR_FIELDS):
        flat[prefix] = value
    return flat


def record_experiment(cfg: Config, root: str) -> None:
    """Write ``{root}/experiment.json`` (at the first start of a run)."""
    os.makedirs(root, exist_ok=True)
    dump_json_atomic(experiment_fields(cfg), osp.join(root, EXPERIMENT_FILE))


def check_work_dir(cfg: Config) -> None:
    """:func:`start_refusal` for a config ``setup_active_learning`` made,
    before the Runner exists, so that a refused start leaves nothing in the
    work dir.

    Raises:
        WorkDirError: With what to do.
    """
    refusal = start_refusal(cfg, state_root(cfg))
    if refusal:
        raise WorkDirError(refusal)


def start_refusal(cfg: Config, root: str) -> Optional[str]:
    """Why a start would change the run whose round folders are in
    ``root``, or None when it may go on. It only reads.

    - Rounds exist and ``cfg.resume`` is not set: a new run would
      overwrite them.
    - ``cfg.resume`` with fields that differ from ``experiment.json``: the
      fields are named.
    """
    if not RoundStore(root).rounds():
        if cfg.get('resume', False):
            elsewhere = sorted(
                osp.relpath(osp.dirname(p), cfg.work_dir) for p in glob.glob(
                    osp.join(cfg.work_dir, '*', EXPERIMENT_FILE))
                if osp.realpath(osp.dirname(p)) != osp.realpath(root))
            if elsewhere:
                return (f'--resume refused: active_learning.state_dir='
                        f'{osp.relpath(root, cfg.work_dir)!r}, but the run '
                        f'of {cfg.work_dir} keeps its rounds in '
                        f'{elsewhere[0]!r}. Resume with active_learning.'
                        f'state_dir={elsewhere[0]!r}, or start a new run '
                        f'with another --work-dir.')
        return None
    if not cfg.get('resume', False):
        return (f'{root} already holds the rounds of an active-learning run. '
                f'Continue it with --resume, or start a new one with another '
                f'--work-dir.')
    path = osp.join(root, EXPERIMENT_FILE)
    if not osp.exists(path):
        return None  # a run started before experiment.json was written
    try:
        with open(path, encoding='utf-8') as f:
            recorded = json.load(f)
        # Written flat by this version; an earlier one kept lists whole.
        recorded = {k: v for key, value in recorded.items()
                    for k, v in flatten(key, value).items()}
    except (OSError, ValueError, AttributeError) as err:
        return (f'--resume refused: {path} is damaged ({err}). Restore it, '
                f'or delete it to resume without comparing the config.')
    changed = changed_fields(recorded, experiment_fields(cfg))
    if not changed:
        return None
    return ('--resume refused: this config changes the experiment that '
            f'{cfg.work_dir} holds, so the resumed run would not be the '
            'same run:\n' + '\n'.join(f'  {line}' for line in changed) +
            f'\nResume with the config the run started with (its fields are '
            f'recorded in {path}; mmengine dumped the config itself into '
            f'{cfg.work_dir}), or start a new run with another --work-dir.')


def changed_fields(recorded: Dict, current: Dict) -> List[str]:
    """``field: was -> now`` for every field that differs."""
    lines = []
    for key in sorted(set(recorded) | set(current)):
        was, now = recorded.get(key, '<unset>'), current.get(key, '<unset>')
        if was != now:
            lines.append(f'{key}: {was!r} -> {now!r}')
    return lines
