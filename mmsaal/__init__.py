# Copyright (c) mmsaal contributors. All rights reserved.
"""mmsaal: Sharpness-Aware Active Learning for OpenMMLab.

Importing the package registers its modules (hooks, samplers, pool
samplers, wrappers), as ``custom_imports=dict(imports=['mmsaal'])`` does in
a config, lets torch load mmengine checkpoints with ``weights_only=True``,
makes ``_base_ = 'mmsaal::...'`` config paths resolve, and has mmengine
format a config's text and read the packages' metafiles once a process
(:mod:`mmsaal.utils.config_cache`).
"""
from .sharpness import ascent_step, perturbed_loss
from .utils import allow_mmengine_checkpoints
from .utils.config_cache import remember_config_work
from .utils.package_configs import register_config_scope
from .version import __version__, version_info

allow_mmengine_checkpoints()
register_config_scope()
remember_config_work()

from . import datasets, engine, models, pool_samplers  # noqa: E402,F401
from .apis import setup_active_learning  # noqa: E402

__all__ = [
    '__version__', 'version_info', 'perturbed_loss', 'ascent_step',
    'allow_mmengine_checkpoints', 'setup_active_learning'
]
