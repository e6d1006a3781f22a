"""``_base_ = 'mmsaal::...'`` after an install, as ``mmdet::`` works: from
the editable install the tests run in, and from a wheel installed into a
folder of its own (a plain ``pip install``)."""
import os
import os.path as osp
import shutil
import subprocess
import sys

from conftest import REPO

#: A user's configs, each inheriting one kind of mmsaal config by name.
USER_CONFIGS = {
    'top_level.py': "_base_ = ['mmsaal::saal_faster_rcnn_voc.py']\n"
                    "active_learning = dict(budget=0.05)\n",
    'defaults.py': "_base_ = ['mmsaal::_base_/active_learning.py']\n",
    'in_a_folder.py':
        "_base_ = 'mmsaal::benchmark/saal_tiny_faster_rcnn_clutter.py'\n",
}
CHECK = """
import os.path as osp, sys
import mmsaal
from mmengine.config import Config
print(osp.dirname(mmsaal.__file__))
for name in sorted(sys.argv[1:]):
    cfg = Config.fromfile(name)
    print(osp.basename(name), cfg.active_learning.budget,
          cfg.get('model', {}).get('type'))
"""


def check_user_configs(tmp_path, env=None):
    """Build each user config in a fresh process run outside the checkout;
    returns (mmsaal's folder, {config: (budget, model type)})."""
    folder = tmp_path / 'user'
    folder.mkdir()
    for name, text in USER_CONFIGS.items():
        (folder / name).write_text(text)
    result = subprocess.run(
        [sys.executable, '-W', 'ignore', '-c', CHECK] +
        [str(folder / name) for name in USER_CONFIGS],
        cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.split('\n')
    built = {line.split()[0]: tuple(line.split()[1:])
             for line in lines[1:] if line}
    return lines[0], built


EXPECTED = {
    'top_level.py': ('0.05', 'FasterRCNN'),
    'defaults.py': ('0.025', 'None'),
    'in_a_folder.py': ('20', 'FasterRCNN'),
}


def test_configs_inherit_by_package_name_from_the_editable_install(
        tmp_path):
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    where, built = check_user_configs(tmp_path, env)
    assert where == osp.join(REPO, 'mmsaal')
    assert built == EXPECTED


def test_configs_inherit_by_package_name_from_a_built_wheel(tmp_path):
    """``pip install .`` builds a wheel that carries the configs in
    ``mmsaal/.mim/configs``: installed into a folder of its own, with the
    checkout out of reach, the same user configs build."""
    source = tmp_path / 'source'
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        '.git', '.venv*', 'work_dirs', 'data', '*.egg-info', '.mim',
        '__pycache__', 'tests', 'docs'))
    wheels = tmp_path / 'wheels'
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
         '--no-build-isolation', '--disable-pip-version-check', '-w',
         str(wheels), str(source)], check=True, capture_output=True)
    site = tmp_path / 'site'
    (wheel, ) = wheels.iterdir()
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
         '--disable-pip-version-check', '--target', str(site), str(wheel)],
        check=True, capture_output=True)
    shutil.rmtree(source)  # nothing may be read from the build's tree
    configs = site / 'mmsaal' / '.mim' / 'configs'
    assert (configs / 'saal_faster_rcnn_voc.py').is_file()
    assert not (configs / 'saal_faster_rcnn_voc.py').is_symlink()
    env = dict(os.environ, PYTHONPATH=str(site))
    where, built = check_user_configs(tmp_path, env)
    assert where == str(site / 'mmsaal')
    assert built == EXPECTED
