"""Starts the project's tools in forked copies of one interpreter that has
imported torch and the OpenMMLab libraries once.

A new interpreter spends about ten seconds of a 2-core machine importing
torch, mmengine, mmcv, mmdet, mmseg and mmpretrain before ``tools/
train_al.py`` reads its config; the suite starts the tools some two hundred
times. This server imports them once, then for each request forks: the
child is a process of its own (its pid, its exit status, its files, killed
by a signal like any other) that runs the script as ``__main__`` with the
request's argv, working folder and environment, as a new interpreter would
after the same imports. Nothing runs in the server itself.

Protocol, one JSON object a line: the request ``{"argv": [script, ...],
"cwd", "env", "stdout", "stderr"}`` (the last two are file paths; argv may
also be ``["-m", module, ...]``, as ``python -m``) on stdin; the replies
``{"pid"}`` when the child starts and ``{"returncode"}`` (negative: the
signal that ended it) when it ends, on stdout.
"""
import atexit
import gc
import importlib
import json
import os
import os.path as osp
import random
import runpy
import sys
import threading
import traceback

#: What every run imports anyway (its config's custom_imports, the
#: registries' locations), in the order a run imports them.
PRELOAD = ('torch', 'mmengine.runner', 'mmsaal', 'mmdet.models',
           'mmdet.datasets', 'mmdet.evaluation', 'mmdet.engine',
           'mmdet.visualization', 'mmseg.models', 'mmseg.datasets',
           'mmseg.evaluation', 'mmseg.engine', 'mmseg.visualization',
           'mmpretrain.models', 'mmpretrain.datasets',
           'mmpretrain.evaluation', 'mmpretrain.engine',
           'mmpretrain.visualization')

#: Configs parsed once before serving, one per OpenMMLab package.
PARSED = ('demo/saal_tiny_faster_rcnn_shapes.py',
          'saal_deeplabv3plus_r50_cityscapes.py',
          'demo/saal_tiny_resnet_digits.py')


def exit_status(exit: SystemExit) -> int:
    """The status the interpreter ends with on ``exit``; a message that is
    no number goes to stderr, status 1."""
    if exit.code is None or isinstance(exit.code, int):
        return exit.code or 0
    print(exit.code, file=sys.stderr)
    return 1


def child(request: dict, base_path: list) -> int:
    """Run the request's script as ``__main__``; its exit status."""
    env = request['env']
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, request['stdout'],
                             os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, request['stderr'],
                             os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(env)
    argv = list(request['argv'])
    module = argv.pop(1) if argv[0] == '-m' else None
    script = None if module else osp.abspath(argv[0])
    # A new interpreter's path: the script's folder (the working folder
    # for -m), $PYTHONPATH, the rest.
    sys.path[:] = [os.getcwd() if module else osp.dirname(script)] + [
        p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p
    ] + base_path
    importlib.invalidate_caches()
    sys.argv = [module or script] + argv[1:]
    random.seed()
    import numpy as np
    np.random.seed()
    if 'OMP_NUM_THREADS' in env:
        import torch
        torch.set_num_threads(int(env['OMP_NUM_THREADS']))
    try:
        if module:
            runpy.run_module(module, run_name='__main__', alter_sys=True)
        else:
            runpy.run_path(script, run_name='__main__')
        code = 0
    except SystemExit as exit:
        code = exit_status(exit)
    except BaseException:  # as the interpreter ends on an uncaught error
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code


def serve() -> None:
    replies = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)  # what the imports print must not reach the replies
    for name in PRELOAD:
        importlib.import_module(name)
    # The packages' metafiles, which resolving a pkg:: base reads (kept
    # by mmsaal's config_cache, so every child has them read).
    from mmengine.config import Config
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for config in PARSED:
        Config.fromfile(osp.join(repo, 'configs', config))
    # What is imported stays for good: a collection in a child (mmengine's
    # datasets collect when they are built) then walks only the child's own
    # objects, not the half million imported ones (0.5 s, every page of
    # them copied on write).
    gc.collect()
    gc.freeze()
    if threading.active_count() != 1:
        raise RuntimeError('a thread started while importing: forking is '
                           'not safe')
    own = os.environ.get('PYTHONPATH', '').split(os.pathsep)
    base_path = [p for p in sys.path[1:] if p not in own]
    replies.write(json.dumps(dict(ready=True)) + '\n')
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                replies.close()
                code = child(request, base_path)
            finally:
                os._exit(code)
        replies.write(json.dumps(dict(pid=pid)) + '\n')
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps(dict(
            returncode=os.waitstatus_to_exitcode(status))) + '\n')


if __name__ == '__main__':
    serve()
