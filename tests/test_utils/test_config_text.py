"""format_config_text_once: mmengine's config text, formatted once."""
from conftest import DEMO_CONFIG
from mmengine.config import Config
from mmengine.config import config as mmengine_config

from mmsaal.utils.config_text import KEEP, format_config_text_once


def test_the_text_is_mmengines_and_yapf_runs_once_per_text(monkeypatch):
    calls = []
    original = mmengine_config.FormatCode

    def counted(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(mmengine_config, 'FormatCode', counted)
    cfg = Config.fromfile(DEMO_CONFIG)
    plain = cfg.pretty_text
    assert len(calls) == 1
    format_config_text_once()
    format_config_text_once()  # idempotent: one layer of memory
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
