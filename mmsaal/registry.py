# Copyright (c) mmsaal contributors. All rights reserved.
"""Registries of mmsaal.

Each node is a child of the root registry in mmengine, under the scope
``mmsaal``, so ``type='mmsaal.ActiveLearningHook'`` resolves from any mmdet
or mmseg config. ``POOL_SAMPLERS`` (acquisition strategies), ``ORACLES``
(who labels a query), ``TASKS`` (what a pool item of a task is to the
rounds), ``UNITS`` (what a query labels) and ``SAAL_ADAPTERS`` (SAAL per model type) are root registries of
their own: nothing upstream builds from them.
"""
import importlib
import importlib.util

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['mmsaal.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMENGINE_DATA_SAMPLERS,
    locations=['mmsaal.datasets.samplers'])
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    locations=['mmsaal.datasets.transforms'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, locations=['mmsaal.engine.hooks'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['mmsaal.engine'])
FUNCTIONS = Registry(
    'function', parent=MMENGINE_FUNCTIONS, locations=['mmsaal.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['mmsaal.engine.optimizers'])
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['mmsaal.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['mmsaal.models.wrappers'])

# Acquisition strategies: they score the unlabeled pool and pick the query.
POOL_SAMPLERS = Registry('pool sampler', locations=['mmsaal.pool_samplers'])
# Who labels a query: the simulated oracle (ground truth), a person, Label
# Studio; active_learning.oracle names one ('human' or dict(type=...)).
ORACLES = Registry('oracle', locations=['mmsaal.oracles'])
# What a pool item of each task is to the rounds (detection, segmentation,
# classification): how its labels are found and counted.
TASKS = Registry('task', locations=['mmsaal.tasks'])
# What a query labels: whole images, regions or pixels of images;
# active_learning.granularity names one.
UNITS = Registry('unit kind', locations=['mmsaal.rounds.units'])


class AdapterRegistry(Registry):
    """The registry of SAAL's task adapters. The built-in ones (one module
    each, :data:`BUILTIN_ADAPTERS`) are imported the first time the registry
    is read (``get``, ``build``, ``module_dict``, ``in``), each only where
    its OpenMMLab library is installed: ``import mmsaal`` stays light, and a
    listing shows every adapter the installed libraries allow."""

    @property
    def module_dict(self) -> dict:
        self.import_from_location()
        return self._module_dict

    def import_from_location(self) -> None:
        if self._imported:
            return
        self._imported = True
        for module, library in BUILTIN_ADAPTERS.items():
            if importlib.util.find_spec(library) is not None:
                importlib.import_module(module)

    def __contains__(self, key) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return len(self.module_dict)


#: The built-in adapter modules and the library each needs.
BUILTIN_ADAPTERS = {
    'mmsaal.adapters.detection': 'mmdet',
    'mmsaal.adapters.segmentation': 'mmseg',
    'mmsaal.adapters.classification': 'mmpretrain',
}
# SAAL's task adapters, registered under the name of the model class they
# serve ('BaseDetector', 'EncoderDecoder'); a model finds its adapter
# through its class hierarchy (mmsaal.adapters.find_adapter).
SAAL_ADAPTERS = AdapterRegistry('saal adapter')
