# Copyright (c) mmsaal contributors. All rights reserved.
"""Turn a config's ``active_learning`` field into the hook and sampler."""
import os
import os.path as osp

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from mmsaal.pool import revealed_mask_dir
from mmsaal.rounds.settings import ActiveLearningSettings
from mmsaal.utils.checkpoint import ATOMIC_BACKEND

HOOK_TYPE = 'mmsaal.ActiveLearningHook'
RESUME_HOOK_TYPE = 'mmsaal.ReproducibleResumeHook'
SAMPLER_TYPE = 'mmsaal.LabeledSetSampler'
PLAIN_SAMPLERS = ('DefaultSampler', 'mmengine.DefaultSampler')
LOOP_TYPE = 'mmsaal.ReproducibleEpochBasedTrainLoop'
PLAIN_LOOPS = (None, 'EpochBasedTrainLoop', 'mmengine.EpochBasedTrainLoop')


def setup_active_learning(cfg: Config) -> Config:
    """Apply ``cfg.active_learning`` (as mmdet applies ``auto_scale_lr``).

    ``active_learning`` holds the fields of ``ActiveLearningHook``; being a
    top-level dict, it inherits and merges field by field through
    ``_base_`` and ``--cfg-options active_learning.budget=0.05``. This
    function, called by ``tools/train_al.py``:

    - appends ``ActiveLearningHook(**active_learning)`` and
      ``ReproducibleResumeHook`` to ``custom_hooks``;
    - makes the train sampler a ``LabeledSetSampler`` (keeping ``shuffle``
      and ``seed`` of a ``DefaultSampler``);
    - sets ``train_cfg.max_epochs = (num_rounds + 1) * epochs_per_round``
      and makes mmengine's ``EpochBasedTrainLoop`` a
      ``ReproducibleEpochBasedTrainLoop``, so that ``--resume`` repeats the
      uninterrupted run: the train dataloader's workers are then started
      every epoch (``persistent_workers=False``) and seeded by
      ``mmsaal.seed_worker``, and ``randomness.seed`` defaults to
      ``active_learning.seed``; checkpoints are written atomically
      (``AtomicLocalBackend``);
    - points every ``LoadRevealedAnnotations`` of the train pipeline that
      has no ``revealed_dir`` to ``{work_dir}/{state_dir}/revealed``, where
      the hook writes the revealed masks.

    Args:
        cfg (Config): The experiment config, changed in place.

    Returns:
        Config: ``cfg``.
    """
    settings = cfg.get('active_learning')
    if settings is None:
        return cfg
    hooks = list(cfg.get('custom_hooks') or [])
    hook = ConfigDict(type=HOOK_TYPE, **settings)
    present = [
        h for h in hooks
        if str(h.get('type', '')).endswith('ActiveLearningHook')
    ]
    # A config mmengine dumped into a work dir holds the hook made here:
    # running it again must not add a second one.
    if present and present != [hook]:
        raise ValueError(
            'the config sets both `active_learning` and an '
            'ActiveLearningHook in `custom_hooks`: keep one of them.')
    if not present:
        hooks.append(hook)
    if not any(str(h.get('type', '')).endswith('ReproducibleResumeHook')
               for h in hooks):
        hooks.append(ConfigDict(type=RESUME_HOOK_TYPE))
    cfg.custom_hooks = hooks

    sampler = cfg.train_dataloader.get('sampler') or ConfigDict()
    if sampler.get('type') in PLAIN_SAMPLERS:
        cfg.train_dataloader.sampler = ConfigDict(
            type=SAMPLER_TYPE,
            **{k: v for k, v in sampler.items() if k != 'type'})
    elif sampler.get('type') not in (SAMPLER_TYPE, 'LabeledSetSampler'):
        raise ValueError(
            f'active learning trains on the labeled items through '
            f"train_dataloader.sampler=dict(type='{SAMPLER_TYPE}'); the "
            f'config uses {sampler.get("type")!r}, which cannot be replaced '
            f'(iteration-based training is not supported yet).')

    train_cfg = cfg.get('train_cfg') or ConfigDict()
    if 'Iter' in str(train_cfg.get('type', '')) or train_cfg.get(
            'by_epoch') is False:
        raise ValueError('active learning runs epoch-based training: set '
                         "train_cfg.type='EpochBasedTrainLoop'")
    given = dict(ActiveLearningSettings.defaults(), **settings)
    max_epochs = (given['num_rounds'] + 1) * given['epochs_per_round']
    if train_cfg.get('max_epochs') not in (None, max_epochs):
        print_log(
            f'train_cfg.max_epochs set to {max_epochs} = (num_rounds + 1) * '
            f'epochs_per_round (was {train_cfg.get("max_epochs")}).',
            logger='current')
    train_cfg.max_epochs = max_epochs
    if train_cfg.get('type') in PLAIN_LOOPS:
        # mmengine takes a loop's ``type`` or its ``by_epoch``, not both.
        train_cfg.pop('by_epoch', None)
        train_cfg.type = LOOP_TYPE
    cfg.train_cfg = train_cfg
    _make_resumable(cfg, given['seed'])
    fit_workers(cfg)
    revealed_dir = revealed_mask_dir(state_root(cfg))
    for step in pipeline_steps(cfg.train_dataloader.dataset):
        if str(step.get('type', '')).endswith('LoadRevealedAnnotations') \
                and step.get('revealed_dir') is None:
            step['revealed_dir'] = revealed_dir
    return cfg


def machine_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fit_workers(cfg: Config) -> None:
    """Lower every data loader's ``num_workers`` (train, val, test and the
    scoring loader ``active_learning.pool_dataloader``) to the cores this
    machine has, saying so: more workers than cores only make them wait
    for each other (and torch warns at every start). A loader's number of
    workers is no field of the experiment, so a run resumes on a machine
    with other cores; its training then draws other augmentations."""
    cores = machine_cores()
    loaders = [(name, cfg.get(name)) for name in
               ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    loaders.append(('active_learning.pool_dataloader',
                    (cfg.get('active_learning') or {}).get(
                        'pool_dataloader')))
    lowered = []
    for name, loader in loaders:
        if isinstance(loader, dict) and isinstance(
                loader.get('num_workers'), int) and \
                loader['num_workers'] > cores:
            lowered.append(f'{name}.num_workers {loader["num_workers"]}')
            loader['num_workers'] = cores
    if lowered:
        print_log(f'{", ".join(lowered)} lowered to {cores}, the cores of '
                  f'this machine.', logger='current')


def check_fields(cfg: Config) -> None:
    """The ``active_learning`` fields, before anything is built or written:
    unknown ones (with the valid ones listed), values the hook refuses, a
    pool sampler that does not build.

    Raises:
        FieldError: Naming the field and the fix.
    """
    import difflib

    from mmsaal.engine.hooks.active_learning_hook import ActiveLearningHook
    from mmsaal.rounds.fields import FieldError
    settings = dict(cfg.get('active_learning') or {})
    fields = ActiveLearningSettings.names()
    for name in settings:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, 1)
            raise FieldError(
                f'active_learning.{name} is not a field of '
                f'ActiveLearningHook'
                + (f' (did you mean {close[0]}?)' if close else '') +
                f'. Its fields: {", ".join(fields)}.')
    try:
        ActiveLearningHook(**settings)
    except FieldError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        raise FieldError(message) from err


def state_root(cfg: Config) -> str:
    """``{work_dir}/{active_learning.state_dir}``: the round folders."""
    settings = cfg.get('active_learning') or {}
    return osp.join(cfg.get('work_dir') or '.',
                    settings.get('state_dir',
                                 ActiveLearningSettings.state_dir))


def _make_resumable(cfg: Config, seed: int) -> None:
    """The data-loading and seed settings a resumed run needs to repeat the
    uninterrupted one (see ``ReproducibleEpochBasedTrainLoop``)."""
    loader = cfg.train_dataloader
    if loader.get('persistent_workers', False):
        print_log(
            'train_dataloader.persistent_workers set to False: workers that '
            'persist keep their random generators across epochs, so a '
            'resumed run could not repeat the uninterrupted one.',
            logger='current')
        loader.persistent_workers = False
    loader.setdefault('worker_init_fn', ConfigDict(type='mmsaal.seed_worker'))
    hooks = cfg.get('default_hooks') or ConfigDict()
    checkpoint = hooks.get('checkpoint', ConfigDict(
        type='CheckpointHook', interval=1))
    if checkpoint is not None and not any(
            checkpoint.get(key) for key in ('backend_args', 'file_client_args')
    ) and '://' not in str(checkpoint.get('out_dir') or ''):
        # A checkpoint cut short by a kill never gets its final name.
        checkpoint.backend_args = ConfigDict(backend=ATOMIC_BACKEND)
        hooks.checkpoint = checkpoint
        cfg.default_hooks = hooks
    randomness = cfg.get('randomness') or ConfigDict()
    if randomness.get('seed') is None:
        randomness.seed = seed
        cfg.randomness = randomness


def pipeline_steps(dataset_cfg):
    """Every transform config of a (possibly nested) dataset config."""
    yield from dataset_cfg.get('pipeline') or []
    for key in ('dataset', 'datasets'):
        inner = dataset_cfg.get(key)
        for sub in inner if isinstance(inner, (list, tuple)) else [inner]:
            if isinstance(sub, dict):
                yield from pipeline_steps(sub)
