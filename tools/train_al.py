# Copyright (c) mmsaal contributors. All rights reserved.
"""Train with active learning: mmdet's / mmseg's ``tools/train.py`` plus
mmsaal's registration and distributed-on-CPU support."""
import argparse
import os
import os.path as osp
import sys

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmsaal  # noqa: F401  (registers modules, allows mmengine checkpoints)
from mmsaal.apis import setup_active_learning
from mmsaal.rounds.oracles import AwaitingLabels


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a detector or segmentor with active learning')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no path) from the latest one '
        'in the work directory; the pool state resumes from the latest round '
        'written in WORK_DIR/rounds')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file, e.g. '
        'custom_hooks.0.pool_sampler.type=RandomSampler')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    """The config as ``tools/train.py`` of mmdet would make it."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               ' configuration file.')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    setup_active_learning(cfg)
    if args.launcher != 'none' and cfg.get('model_wrapper_cfg') is None:
        # mmengine passes device_ids to DDP, which a CPU model refuses.
        cfg.model_wrapper_cfg = dict(
            type='mmsaal.AnyDeviceDistributedDataParallel')
    return cfg


def init_cpu_dist(cfg: Config) -> None:
    """Start the process group of a ``--launcher pytorch`` run on a machine
    without CUDA.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which a CPU
    build of torch cannot do; the Runner skips it once a group exists.
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available() or \
            torch_dist.is_initialized():
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'gloo')
    if backend != 'gloo':
        raise RuntimeError(
            f'env_cfg.dist_cfg.backend={backend!r} needs CUDA, which this '
            f'machine lacks: use --cfg-options env_cfg.dist_cfg.backend=gloo')
    torch_dist.init_process_group(backend='gloo')


def main():
    args = parse_args()
    cfg = build_cfg(args)
    init_cpu_dist(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    try:
        runner.train()
    except AwaitingLabels as waiting:
        # oracle='human': the query is on disk; a person labels it next.
        print_log(str(waiting), logger='current')
        sys.exit(0)


if __name__ == '__main__':
    main()
