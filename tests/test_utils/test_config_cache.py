"""remember_config_work: mmengine's config text and metafiles, computed
once a process, exactly as mmengine computes them."""
import os

from conftest import DEMO_CONFIG
from mmengine.config import Config
from mmengine.config import config as config_module
from mmengine.config import utils as config_utils

from mmsaal.utils.config_cache import KEEP, remember_config_work


def raw(function):
    """mmengine's own function under what ``import mmsaal`` installed."""
    return getattr(function, '__wrapped__', function)


def test_the_text_is_mmengines_and_yapf_runs_once_per_text(monkeypatch):
    calls = []
    original = raw(config_module.FormatCode)

    def counted(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(config_module, 'FormatCode', counted)
    cfg = Config.fromfile(DEMO_CONFIG)
    plain = cfg.pretty_text
    assert len(calls) == 1
    remember_config_work()
    remember_config_work()  # idempotent: one layer of memory
    assert [cfg.pretty_text for _ in range(3)] == [plain] * 3
    assert len(calls) == 2
    # A changed config is formatted anew, and its text is the new one.
    cfg.train_cfg.max_epochs = 99
    changed = cfg.pretty_text
    assert len(calls) == 3 and changed != plain and '99' in changed
    # Only the last KEEP texts are kept: after KEEP others, the changed
    # text is formatted again.
    for i in range(KEEP):
        assert Config(dict(value=i)).pretty_text == f'value = {i}\n'
    assert len(calls) == 3 + KEEP
    assert cfg.pretty_text == changed and len(calls) == 4 + KEEP


def test_metafiles_are_read_once_and_again_when_they_change(
        monkeypatch, tmp_path):
    reads = []
    original = raw(config_utils.load)

    def counted(file, *args, **kwargs):
        reads.append(file)
        return original(file, *args, **kwargs)

    monkeypatch.setattr(config_utils, 'load', counted)
    plain = Config.fromfile(DEMO_CONFIG)  # mmengine's own reads
    first = len(reads)
    files = set(reads)
    # Every metafile once for each mmdet:: base (two of them).
    assert first == 2 * len(files) > 20, reads
    remember_config_work()
    assert Config.fromfile(DEMO_CONFIG).to_dict() == plain.to_dict()
    assert sorted(reads[first:]) == sorted(files)  # each one once
    read = len(reads)
    assert Config.fromfile(DEMO_CONFIG).to_dict() == plain.to_dict()
    assert len(reads) == read  # nothing read again
    # A changed file is read again.
    path = tmp_path / 'meta.yml'
    path.write_text('Models: [a]\n')
    assert config_utils.load(str(path)) == dict(Models=['a'])
    assert config_utils.load(str(path)) == dict(Models=['a'])
    path.write_text('Models: [a, b]\n')
    os.utime(path, ns=(1, 1))
    assert config_utils.load(str(path)) == dict(Models=['a', 'b'])
    assert reads[read:] == [str(path)] * 2
