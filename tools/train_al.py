# Copyright (c) mmsaal contributors. All rights reserved.
"""Train with active learning: mmdet's / mmseg's ``tools/train.py`` plus
mmsaal's registration and distributed-on-CPU support."""
import argparse
import contextlib
import logging
import os
import os.path as osp
import shutil
import sys
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmsaal  # noqa: F401  (registers modules, allows mmengine checkpoints)
from mmsaal.apis import (check_fields, check_work_dir, setup_active_learning,
                         state_root)
from mmsaal.oracles import AwaitingLabels, oracle_class, oracle_spec
from mmsaal.pool import RoundStore, revealed_mask_dir
from mmsaal.rounds.pool_dataset import pool_dataset_cfg
from mmsaal.utils import (DataError, FieldError, WorkDirError, WorkDirLock,
                          checkpoint_to_resume, remove_temporaries)
from mmsaal.utils.checkpoint import check_checkpoint
from mmsaal.utils.files import write_bytes_atomic
from mmsaal.utils.work_dir import LOCK_FILE



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
        if 'SAMOptimWrapper' in str(cfg.optim_wrapper.get('type')):
            raise SystemExit(
                '--amp replaces optim_wrapper.type with AmpOptimWrapper, '
                'which would drop SAMOptimWrapper: train with SAM without '
                '--amp.')
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
        # mmengine would trust last_checkpoint, which a kill can cut short
        # and a moved work dir leaves pointing elsewhere.
        cfg.load_from = checkpoint_to_resume(cfg.work_dir)
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
        check_checkpoint(args.resume, '--resume')
    elif cfg.get('load_from'):
        check_checkpoint(cfg.load_from, 'load_from')

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
    try:
        cfg = build_cfg(args)
        if cfg.get('active_learning') is not None:
            check_fields(cfg)
            check_work_dir(cfg)
        with one_run(cfg):
            refuse_planted_links(cfg, args.config)
            init_cpu_dist(cfg)
            take_labels(cfg)
            waiting = train(cfg)
            again = waiting is not None and wait_for_labels(cfg)
    except (WorkDirError, FieldError, DataError) as err:
        # What to fix is in the message; a traceback would hide it.
        print(f'error: {err}', file=sys.stderr)
        sys.exit(1)
    if again:  # every image is labeled: go on in a fresh process
        print_log('The round is labeled; resuming.', logger='current')
        argv = [a for a in sys.argv if a != '--resume']
        os.execv(sys.executable, [sys.executable] + argv + ['--resume'])
    if waiting is not None:
        leave_process_group()
        sys.exit(0)
    leave_process_group()


def run_oracle(cfg: Config):
    """``(oracle class, its fields)`` of the run, or None without active
    learning."""
    oracle = (cfg.get('active_learning') or {}).get('oracle', 'simulated')
    if cfg.get('active_learning') is None:
        return None
    return oracle_class(oracle), oracle_spec(oracle)[1]


def take_labels(cfg: Config, wait: float = 0) -> bool:
    """The oracle brings labels it keeps elsewhere into the dataset (first
    rank; before any dataset reads them: ``BaseOracle.take_labels``),
    waiting up to ``wait`` seconds for the rest. Returns whether every
    queried image is labeled."""
    found = run_oracle(cfg)
    if found is None:
        return False
    oracle, fields = found
    complete = False
    if int(os.environ.get('RANK', 0)) == 0:
        taken = oracle.take_labels(
            RoundStore(state_root(cfg)), pool_dataset_cfg(cfg, scoped=True),
            fields, wait)
        complete = taken is not None and taken.labeled >= taken.queried
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
    return complete


def wait_for_labels(cfg: Config) -> bool:
    """A run that stopped for labels waits in place for them as long as
    its oracle says (``BaseOracle.wait_seconds``, e.g. Label Studio's
    ``oracle.wait``); True once all are in."""
    found = run_oracle(cfg)
    if found is None or cfg.launcher != 'none':
        return False
    wait = found[0].wait_seconds(found[1])
    return wait > 0 and take_labels(cfg, wait)


def train(cfg: Config) -> Optional[str]:
    """Run; the message when the run stops for labels, else None."""
    with no_litter_if_refused(cfg.work_dir) as runners:
        if 'runner_type' not in cfg:
            runner = Runner.from_cfg(cfg)
        else:
            runner = RUNNERS.build(cfg)
        runners.append(runner)
        try:
            runner.train()
        except AwaitingLabels as waiting:
            # A person labels the query (on disk, or in Label Studio) next.
            print_log(str(waiting), logger='current')
            return str(waiting)
    return None


@contextlib.contextmanager
def one_run(cfg: Config):
    """Hold the work dir's lock for the run (on the first rank: the ranks
    of one run share it), and clean what a killed write left there."""
    if int(os.environ.get('RANK', 0)) != 0 or cfg.get(
            'active_learning') is None:
        yield
        return
    existed = osp.isdir(cfg.work_dir)
    lock = WorkDirLock(cfg.work_dir, 'tools/train_al.py')
    note = lock.acquire()
    try:
        if note:
            print_log(f'{cfg.work_dir}: {note}.', logger='current')
        root = state_root(cfg)
        for folder in (cfg.work_dir, root, revealed_mask_dir(root)):
            remove_temporaries(folder)
        yield
    finally:
        lock.release()
        if not existed and osp.isdir(cfg.work_dir) and \
                not os.listdir(cfg.work_dir):
            os.rmdir(cfg.work_dir)  # a refused start leaves nothing


def leave_process_group() -> None:
    """End a distributed run's process once every rank is done.

    Neither mmengine's Runner nor torchrun destroys the process group; left
    to interpreter exit, a rank can die with SIGABRT ("terminate called
    without an active exception", pytorch/pytorch#190489) after all its
    work is written: a C++ thread of the distributed stack is still
    joinable when the interpreter's teardown destroys it. Destroying the
    group first was not enough (CI's clean clone hit it again). So,
    with every rank past the barrier, the group destroyed and the logs and
    streams flushed, the rank exits without that teardown. Called on
    success only: a rank that failed must not wait here for ranks still
    inside a collective.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@contextlib.contextmanager
def no_litter_if_refused(work_dir: str):
    """Remove what a start that fails before training begins wrote into
    the work dir (its log folder, the dumped config, a round 0 written
    before a bad checkpoint was found): a refused start leaves the work dir
    as it was, so that the same command runs again once fixed."""
    existed = osp.isdir(work_dir)
    before = set(os.listdir(work_dir)) if existed else set()
    kept = small_files(work_dir) if existed else {}
    runners: list = []
    try:
        yield runners
    except Exception:
        loop = getattr(runners[0], '_train_loop', None) if runners else None
        if not getattr(loop, 'started', False) and is_main_process():
            logging.shutdown()  # the log file handler holds the folder open
            for name in set(os.listdir(work_dir) if osp.isdir(work_dir)
                            else ()) - before - {LOCK_FILE}:
                path = osp.join(work_dir, name)
                if osp.isdir(path) and not osp.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            # What the start rewrote (mmengine's config dump, the reports)
            # goes back to what it was.
            for name, data in kept.items():
                if small_files(work_dir, [name]).get(name) != data:
                    write_bytes_atomic(data, osp.join(work_dir, name))
        raise


#: A refused start restores the work dir's files up to this size.
RESTORED_BYTES = 16 * 2**20


def small_files(work_dir: str, names=None) -> dict:
    """``{name: bytes}`` of the regular files directly in ``work_dir``
    (not links, not checkpoints) of at most :data:`RESTORED_BYTES`."""
    found = {}
    for name in os.listdir(work_dir) if names is None else names:
        path = osp.join(work_dir, name)
        if name == LOCK_FILE or name.endswith('.pth') or osp.islink(path) \
                or not osp.isfile(path) or \
                osp.getsize(path) > RESTORED_BYTES:
            continue
        with open(path, 'rb') as f:
            found[name] = f.read()
    return found


#: Files mmengine writes in the work dir under fixed names: one planted as
#: a link would make it write wherever the link points.
MMENGINE_NAMES = ('last_checkpoint', )


def refuse_planted_links(cfg: Config, config_path: str) -> None:
    """Refuse a link at a name mmengine writes in the work dir (its
    config dump, ``last_checkpoint``): it would write through it. A work
    dir, or its ``state_dir``, that is itself a link (another disk) is
    honoured."""
    for name in MMENGINE_NAMES + (osp.basename(config_path), ):
        path = osp.join(cfg.work_dir, name)
        if osp.islink(path):
            raise WorkDirError(
                f'{path} is a link (to {os.readlink(path)}): mmengine would '
                f'write through it. Replace it with the file itself, or '
                f'delete it.')


if __name__ == '__main__':
    main()
