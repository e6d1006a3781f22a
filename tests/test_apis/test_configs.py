"""Every shipped config parses, inherits mmdet's, and builds its model and
active-learning hook (no weights are loaded, nothing is downloaded)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import HOOKS, MODELS, init_default_scope

from conftest import REPO
from mmsaal.apis import setup_active_learning

CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'demo', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'benchmark', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = setup_active_learning(Config.fromfile(path))
    al = cfg.active_learning
    assert cfg.train_dataloader.sampler.type == 'mmsaal.LabeledSetSampler'
    assert cfg.train_cfg.max_epochs == (al.num_rounds + 1) * \
        al.epochs_per_round
    # Resumable: the loop, the hook and data loading that repeat a run.
    assert cfg.train_cfg.type == 'mmsaal.ReproducibleEpochBasedTrainLoop'
    assert not cfg.train_dataloader.get('persistent_workers', False)
    assert cfg.randomness.seed is not None
    assert cfg.default_hooks.checkpoint.backend_args.backend == \
        'mmsaal_atomic_local'
    types = [h.type for h in cfg.custom_hooks]
    assert types[-2:] == ['mmsaal.ActiveLearningHook',
                          'mmsaal.ReproducibleResumeHook']
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    hook = HOOKS.build(cfg.custom_hooks[-2])
    assert type(hook.pool_sampler).__name__ == 'SAALSampler'
    model = MODELS.build(cfg.model)
    assert hook.pool_sampler.adapter(model).params


def test_voc_configs_follow_the_literature_protocol():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'saal_faster_rcnn_voc.py'))
    assert cfg.active_learning.initial_labeled == 0.05
    assert cfg.active_learning.budget == 0.025
    assert cfg.active_learning.num_rounds == 5
    assert cfg.model.roi_head.bbox_head.num_classes == 20


def test_active_learning_and_a_hand_made_hook_are_not_both_allowed():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'saal_faster_rcnn_voc.py'))
    cfg.custom_hooks = [dict(type='mmsaal.ActiveLearningHook')]
    with pytest.raises(ValueError, match='keep one of them'):
        setup_active_learning(cfg)


def test_measured_models_get_the_configs_data_preprocessor():
    """The measuring tools build a model as the Runner does: with the
    top-level data_preprocessor (mean and std) merged in."""
    import torch

    from mmsaal.apis.measure import build_model
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'saal_resnet18_cifar10.py'))
    assert 'data_preprocessor' not in cfg.model
    init_default_scope('mmpretrain')
    model = build_model(cfg)
    assert torch.allclose(model.data_preprocessor.mean.flatten(),
                          torch.tensor(cfg.data_preprocessor.mean))
    assert 'data_preprocessor' not in cfg.model  # the config is untouched


def test_loaders_get_no_more_workers_than_cores():
    from mmsaal.apis.config import fit_workers, machine_cores
    cfg = Config(dict(
        train_dataloader=dict(num_workers=1000),
        val_dataloader=dict(num_workers=0),
        active_learning=dict(pool_dataloader=dict(num_workers=1000))))
    fit_workers(cfg)
    assert cfg.train_dataloader.num_workers == machine_cores()
    assert cfg.val_dataloader.num_workers == 0
    assert cfg.active_learning.pool_dataloader.num_workers == \
        machine_cores()


def test_the_adapter_registry_lists_the_adapters_after_import():
    import subprocess
    import sys
    listed = subprocess.run(
        [sys.executable, '-c',
         'import mmsaal; from mmsaal.registry import SAAL_ADAPTERS; '
         'print(sorted(SAAL_ADAPTERS.module_dict)); '
         "print(SAAL_ADAPTERS.get('ImageClassifier').__name__)"],
        capture_output=True, text=True, check=True, cwd=REPO)
    assert listed.stdout.split('\n')[:2] == [
        "['BaseDetector', 'EncoderDecoder', 'ImageClassifier']",
        'ClassificationSAAL']
