import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

# A test worker of pytest -n N computes on its share of the cores (set
# before numpy and torch start their thread pools, and inherited by every
# tool a test starts). Two workers of two OpenMP threads each on 2 cores
# spin against each other: the end-to-end files took 3x as long.
if 'PYTEST_XDIST_WORKER_COUNT' in os.environ:
    os.environ.setdefault('OMP_NUM_THREADS', str(max(
        1, (os.cpu_count() or 1) //
        int(os.environ['PYTEST_XDIST_WORKER_COUNT']))))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'saal_tiny_faster_rcnn_shapes.py')
DIGITS_CONFIG = osp.join(REPO, 'configs', 'demo',
                         'saal_tiny_resnet_digits.py')
# Test-only modules (e.g. crash_once) import by their own name.
PYTHONPATH = os.pathsep.join([REPO, osp.join(REPO, 'tests')])


def small_voc_set(tmp_path_factory, name: str, style: str = 'demo') -> str:
    """A small synthetic VOC-layout set (40 pool and 12 test images of
    96 px); returns its ``data_root``."""
    from mmsaal.datasets.synthetic import generate_voc_shapes
    root = tmp_path_factory.mktemp(name)
    generate_voc_shapes(str(root), num_trainval=40, num_test=12,
                        image_size=96, seed=0, style=style)
    return str(root / 'VOCdevkit') + '/'


def float32_rise_tolerance(loss: float, ulps: int = 4) -> float:
    """The absolute error a loss rise L1 - L0 carries in float32.

    Both losses are float32 sums, each known to a few units in its last
    place; a rise of 1e-5 on a loss near 2 is under a hundred ulps, so a 1%
    tolerance alone is about one ulp, which another CPU's summation order
    moves (CI measured 2). Tests comparing rises allow these ulps beside
    their relative tolerance.
    """
    return ulps * float(np.spacing(np.float32(float(loss))))


@pytest.fixture(scope='session')
def voc_shapes(tmp_path_factory):
    """The demo style's small set, written once per test session."""
    return small_voc_set(tmp_path_factory, 'voc_shapes')


def data_options(data_root: str) -> list:
    """--cfg-options that point the demo config to ``data_root``."""
    return [
        f'{loader}.dataset.data_root={data_root}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]


def quick_options(data_root: str, rounds: int = 2, epochs: int = 1,
                  initial: int = 10, budget: int = 5,
                  sampler: str = 'RandomSampler') -> list:
    """A short schedule of the demo config on the test data."""
    return data_options(data_root) + [
        f'active_learning.num_rounds={rounds}',
        f'active_learning.epochs_per_round={epochs}',
        f'active_learning.initial_labeled={initial}',
        f'active_learning.budget={budget}',
        f'active_learning.pool_sampler={sampler}',
        f'train_cfg.val_interval={epochs}',
        'train_dataloader.batch_size=4',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=5',
    ]


def train_al_command(work_dir: str, options: list, config: str = DEMO_CONFIG,
                     extra: list = ()) -> list:
    return [sys.executable, osp.join(REPO, 'tools', 'train_al.py'), config,
            '--work-dir', work_dir, *extra, '--cfg-options', *options]


class ToolServer:
    """This test process's ``tests/tool_server.py``: tools run in forked
    copies of an interpreter that imported torch and the OpenMMLab
    libraries once (a second each, where a new interpreter takes ten).
    ``MMSAAL_FRESH_INTERPRETERS=1`` starts each in a new interpreter
    instead."""

    process = None
    buffer = b''

    @classmethod
    def reply(cls, timeout: float) -> dict:
        import select
        import time
        deadline = time.time() + timeout
        while b'\n' not in cls.buffer:
            left = deadline - time.time()
            if left <= 0 or not select.select([cls.process.stdout], [], [],
                                              left)[0]:
                raise TimeoutError
            chunk = os.read(cls.process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError('tests/tool_server.py ended: see '
                                   + cls.log)
            cls.buffer += chunk
        line, cls.buffer = cls.buffer.split(b'\n', 1)
        return json.loads(line)

    @classmethod
    def start(cls) -> None:
        import tempfile
        fd, cls.log = tempfile.mkstemp(prefix='tool_server_', suffix='.log')
        cls.buffer = b''
        with os.fdopen(fd, 'w') as log:
            cls.process = subprocess.Popen(
                [sys.executable, osp.join(REPO, 'tests', 'tool_server.py')],
                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log, env=dict(os.environ, PYTHONPATH=REPO))
        assert cls.reply(600) == dict(ready=True)

    @classmethod
    def run(cls, argv: list, cwd: str, env: dict, timeout: float,
            kill_when=None) -> subprocess.CompletedProcess:
        import signal
        import tempfile
        import time
        if cls.process is None or cls.process.poll() is not None:
            cls.start()
        with tempfile.TemporaryDirectory() as tmp:
            out, err = osp.join(tmp, 'stdout'), osp.join(tmp, 'stderr')
            cls.process.stdin.write(json.dumps(dict(
                argv=list(argv), cwd=cwd, env=env, stdout=out,
                stderr=err)).encode() + b'\n')
            cls.process.stdin.flush()
            pid = cls.reply(60)['pid']
            deadline = time.time() + timeout
            while True:
                try:
                    code = cls.reply(0.05 if kill_when else timeout)[
                        'returncode']
                    break
                except TimeoutError:
                    late = time.time() >= deadline
                    if late or kill_when():
                        os.kill(pid, signal.SIGKILL)
                        code = cls.reply(60)['returncode']
                        if late:
                            raise subprocess.TimeoutExpired(argv, timeout)
                        break
            read = lambda path: open(path, errors='replace').read()  # noqa
            return subprocess.CompletedProcess(argv, code, read(out),
                                               read(err))


def run_python(script: str, args: list, env: dict = None, cwd: str = REPO,
               timeout: float = 600,
               kill_when=None) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS`` with ``env`` (by default this environment
    with the repository and tests/ on PYTHONPATH), its output captured:
    through :class:`ToolServer`, or a new interpreter where
    ``MMSAAL_FRESH_INTERPRETERS=1``. ``kill_when()``, if given, is asked
    every 50 ms while it runs: once true, the run is killed (SIGKILL)."""
    if env is None:
        env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    argv = [script, *map(str, args)]
    if os.environ.get('MMSAAL_FRESH_INTERPRETERS') != '1':
        return ToolServer.run(argv, cwd, env, timeout, kill_when)
    if kill_when is None:
        return subprocess.run([sys.executable, *argv], cwd=cwd, env=env,
                              capture_output=True, text=True,
                              timeout=timeout)
    import signal
    import time
    with subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as process:
        deadline = time.time() + timeout
        while process.poll() is None:
            if time.time() >= deadline:
                process.kill()
                raise subprocess.TimeoutExpired(argv, timeout)
            if kill_when():
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        code = process.wait()
    return subprocess.CompletedProcess(argv, code, '', '')


def run_command(command: list, env: dict = None, timeout: float = 900,
                kill_when=None) -> subprocess.CompletedProcess:
    """``command`` (``[sys.executable, ...]``, e.g. a kill switch's, which
    may kill itself) from the repository, with this environment plus
    ``env``, through :func:`run_python`: ``mmsaal.testing.kill_switch.run``
    for the tests."""
    if command[0] != sys.executable:
        raise ValueError(f'not a Python command: {command[:2]}')
    return run_python(command[1], command[2:],
                      env={**os.environ, **(env or {})}, timeout=timeout,
                      kill_when=kill_when)


def run_train_al(work_dir: str, options: list, config: str = DEMO_CONFIG,
                 extra: list = (), check: bool = True, env: dict = None,
                 timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real ``tools/train_al.py`` in a process of its own
    (:func:`run_python`)."""
    result = run_command(train_al_command(work_dir, options, config, extra),
                         {'PYTHONPATH': PYTHONPATH, **(env or {})}, timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f'train_al.py failed ({result.returncode}):\n'
            f'{result.stdout[-4000:]}\n{result.stderr[-6000:]}')
    return result


def first_human_round(work_dir: str, options: list, config: str,
                      labeled: str, waits: str = 'waits for labels'):
    """Start a human-oracle run that stops for labels: it says it starts
    with ``labeled`` ('10 of 40') items labeled and ``waits``. Returns
    (its log, the queried images of ``query_01/query.json``)."""
    import json
    first = run_train_al(work_dir, options, config=config)
    log = first.stdout + first.stderr
    assert f'starts with {labeled} items labeled' in log, log[-2000:]
    assert waits in log, log[-2000:]
    with open(osp.join(work_dir, 'rounds', 'query_01', 'query.json')) as f:
        return log, json.load(f)['images']


SEG_DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                           'saal_tiny_deeplabv3plus_street_domains.py')


@pytest.fixture(scope='session')
def street_domains(tmp_path_factory):
    """A small synthetic two-domain set (GTA5 / Cityscapes layouts)."""
    from mmsaal.datasets.synthetic import generate_street_domains
    root = tmp_path_factory.mktemp('street_domains')
    generate_street_domains(str(root), num_source=16, num_target_train=16,
                            num_target_val=6, size=(48, 96), seed=0)
    return str(root)


def seg_data_options(root: str) -> list:
    """--cfg-options that point the segmentation demo config to ``root``."""
    datasets = 'train_dataloader.dataset.datasets'
    return [
        f'{datasets}.0.data_root={root}/gta/',
        f'{datasets}.1.data_root={root}/cityscapes/',
        f'val_dataloader.dataset.data_root={root}/cityscapes/',
        f'test_dataloader.dataset.data_root={root}/cityscapes/',
        'model.data_preprocessor.size=(48,96)',
    ]


def seg_quick_options(root: str, rounds: int = 2, epochs: int = 1,
                      budget: float = 0.05, sampler: str = 'RandomSampler',
                      granularity: str = 'region',
                      cold_start_rounds: int = 0) -> list:
    """A short domain-adaptive schedule of the segmentation demo config;
    ``sampler`` picks every round unless ``cold_start_rounds`` says
    otherwise (the config's own cold start is turned off)."""
    return seg_data_options(root) + [
        f'active_learning.num_rounds={rounds}',
        f'active_learning.cold_start_rounds={cold_start_rounds}',
        f'active_learning.epochs_per_round={epochs}',
        f'active_learning.budget={budget}',
        f'active_learning.pool_sampler={sampler}',
        f'active_learning.granularity={granularity}',
        f'train_cfg.val_interval={epochs}',
        'default_hooks.logger.interval=5',
    ]


def kill_when_round_written(work_dir: str, options: list,
                            config: str = DEMO_CONFIG,
                            round_idx: int = 1) -> None:
    """Run ``train_al.py`` and SIGKILL it as soon as ``round_XX`` exists:
    a crash in the middle of the next round's training."""
    import signal
    folder = osp.join(work_dir, 'rounds', f'round_{round_idx:02d}')
    killed = run_command(train_al_command(work_dir, options, config),
                         dict(PYTHONPATH=PYTHONPATH), timeout=300,
                         kill_when=lambda: osp.isdir(folder))
    assert killed.returncode == -signal.SIGKILL, (
        f'{folder} never came ({killed.returncode}): '
        f'{killed.stderr[-3000:]}')


# A person's labels of the demo-style VOC set, in the layouts a user has.
CLASSES = ('circle', 'square', 'triangle')


def voc_to_coco(voc_root: str, names: list) -> dict:
    """The ground truth of ``names`` as a person's COCO export."""
    images, annotations = [], []
    for image_id, name in enumerate(names, 1):
        stem = osp.splitext(name)[0]
        tree = ET.parse(osp.join(voc_root, 'Shapes', 'Annotations',
                                 f'{stem}.xml'))
        size = tree.find('size')
        images.append(dict(id=image_id, file_name=name,
                           width=int(size.find('width').text),
                           height=int(size.find('height').text)))
        for obj in tree.findall('object'):
            box = [float(obj.find('bndbox').find(k).text)
                   for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=CLASSES.index(obj.find('name').text) + 1,
                bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                area=(box[2] - box[0]) * (box[3] - box[1]), iscrowd=0))
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=c)
                            for i, c in enumerate(CLASSES)])


@pytest.fixture
def image_folder_pool(voc_shapes, tmp_path):
    """A folder of the 40 pool images; 10 of them labeled in labels.json.
    """
    pool = tmp_path / 'pool'
    (pool / 'images').mkdir(parents=True)
    with open(osp.join(voc_shapes, 'Shapes', 'ImageSets', 'Main',
                       'trainval.txt')) as f:
        names = sorted(f'{line.strip()}.jpg' for line in f if line.strip())
    for name in names:
        shutil.copy(osp.join(voc_shapes, 'Shapes', 'JPEGImages', name),
                    pool / 'images')
    (pool / 'labels.json').write_text(
        json.dumps(voc_to_coco(voc_shapes, names[:10])))
    config = tmp_path / 'human_config.py'
    config.write_text(
        f'_base_ = [{DEMO_CONFIG!r}]\n'
        'train_dataloader = dict(dataset=dict(_delete_=True,\n'
        "    type='mmsaal.PoolCocoDataset', data_root=" f'{str(pool)!r},\n'
        "    ann_file='labels.json', data_prefix=dict(img='images/'),\n"
        f'    metainfo=dict(classes={CLASSES!r}),\n'
        "    pipeline={{_base_.train_pipeline}}))\n")
    return str(pool), str(config), names


def human_options(voc_shapes):
    train_root = 'train_dataloader.dataset.data_root'
    return [o for o in quick_options(voc_shapes, rounds=1,
                                     sampler='EntropySampler')
            if not o.startswith(train_root)] + [
        "active_learning.oracle=human"]


def load_tool(script: str):
    """A fresh module of ``tools/<script>`` (its functions, its ``main``)."""
    import importlib.util
    path = osp.join(REPO, 'tools', script)
    spec = importlib.util.spec_from_file_location(
        'tool_' + osp.splitext(osp.basename(script))[0], path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def run_tool(script: str, args: list) -> subprocess.CompletedProcess:
    """Run ``tools/<script>``'s ``main()`` with ``args`` in this process,
    as its command line would: what it prints, and the exit status the
    interpreter gives a ``SystemExit`` (its message on stderr, status 1).

    The tools that end without training (``import_labels.py``) cost a
    second here where a new interpreter spends ten importing torch and
    the OpenMMLab libraries again; the runs that need one (a resume, a
    kill) still start ``tools/train_al.py`` in a subprocess."""
    import contextlib
    import io

    from tool_server import exit_status
    tool = load_tool(script)
    path = tool.__file__
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, [path, *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                tool.main()
                code = 0
            except SystemExit as exit:
                code = exit_status(exit)
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess([path, *args], code, out.getvalue(),
                                       err.getvalue())


def import_labels(work_dir, labels_path, *extra, check=True,
                  in_process=True):
    """``tools/import_labels.py WORK_DIR LABELS [extra]``: in this process
    (:func:`run_tool`), or as its own command with ``in_process=False``."""
    if in_process:
        result = run_tool('import_labels.py', [work_dir, labels_path,
                                               *extra])
    else:
        result = subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'import_labels.py'),
             work_dir, labels_path, *extra], cwd=REPO, capture_output=True,
            text=True, env={'PYTHONPATH': PYTHONPATH, 'PATH': '/usr/bin:/bin'})
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def voc_pool(voc_shapes, tmp_path, labeled: int):
    """A copy of the VOC set whose pool images past the first ``labeled``
    have no XML (as a user's unlabeled images have none), and a config
    that reads it as mmsaal.PoolVOCDataset. Returns (data root, config,
    the XMLs taken away by image id)."""
    root = tmp_path / 'voc'
    shutil.copytree(voc_shapes, root)
    subset = root / 'Shapes'
    ids = (subset / 'ImageSets' / 'Main' / 'trainval.txt').read_text().split()
    taken = {}
    for image_id in ids[labeled:]:
        xml = subset / 'Annotations' / f'{image_id}.xml'
        taken[image_id] = xml.read_text()
        xml.unlink()
    config = tmp_path / 'voc_pool_config.py'
    config.write_text(
        f'_base_ = [{DEMO_CONFIG!r}]\n'
        "train_dataloader = dict(dataset=dict(type='mmsaal.PoolVOCDataset'))\n")
    return str(root) + '/', str(config), taken


def class_folder_pool(digits, tmp_path, per_class=12, labeled=2):
    """The user's layout: the digits' class folders with ``labeled``
    images each, the other ``per_class - labeled`` of each class in
    ``unlabeled/``. Returns (data root, config, {file name: class})."""
    root = tmp_path / 'digits'
    shutil.copytree(osp.join(digits, 'test'), root / 'test')
    truth = {}
    for label in range(10):
        names = sorted(os.listdir(osp.join(digits, 'train', str(label))))
        (root / 'train' / str(label)).mkdir(parents=True)
        (root / 'train' / 'unlabeled').mkdir(exist_ok=True)
        for j, name in enumerate(names[:per_class]):
            folder = str(label) if j < labeled else 'unlabeled'
            shutil.copy(osp.join(digits, 'train', str(label), name),
                        root / 'train' / folder / name)
            truth[name] = str(label)
    config = tmp_path / 'folder_config.py'
    config.write_text(
        f'_base_ = [{DIGITS_CONFIG!r}]\n'
        "train_dataloader = dict(dataset=dict(type='mmsaal.PoolImageFolder'))"
        "\nactive_learning = dict(initial_balanced=False)\n")
    return str(root) + '/', str(config), truth


def folder_options(root):
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')] + [
        'active_learning.num_rounds=1', 'active_learning.epochs_per_round=1',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
        'active_learning.oracle=human']
