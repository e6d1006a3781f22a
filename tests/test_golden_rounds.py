"""tools/misc/golden_rounds.py: the comparison that proves a refactor."""
import json
import os.path as osp
import subprocess
import sys

from conftest import REPO

SCRIPT = osp.join(REPO, 'tools', 'misc', 'golden_rounds.py')


def write_run(root, score, seconds):
    folder = root / 'case' / 'rounds' / 'round_01'
    folder.mkdir(parents=True)
    queried = dict(round=1, strategy='S', scoring_seconds=seconds,
                   items=[dict(index=3, score=score)])
    (folder / 'queried.json').write_text(json.dumps(queried, indent=1))
    (folder / 'labeled.json').write_text('{"round": 1}')
    (folder / 'revealed.npz').write_bytes(b'\x00\x01')


def compare(before, after):
    return subprocess.run(
        [sys.executable, SCRIPT, 'compare', str(before), str(after)],
        capture_output=True, text=True)


def test_wall_clock_fields_are_ignored_and_everything_else_counts(tmp_path):
    write_run(tmp_path / 'a', 0.5, 1.0)
    write_run(tmp_path / 'b', 0.5, 7.0)  # only the time differs
    same = compare(tmp_path / 'a', tmp_path / 'b')
    assert same.returncode == 0
    assert '3 round files compared, 0 differ' in same.stdout

    write_run(tmp_path / 'c', 0.5000001, 1.0)
    (tmp_path / 'c' / 'case' / 'rounds' / 'round_01' /
     'revealed.npz').write_bytes(b'\x00\x02')
    differ = compare(tmp_path / 'a', tmp_path / 'c')
    assert differ.returncode == 1
    assert 'DIFFERS case/round_01/queried.json' in differ.stdout
    assert 'DIFFERS case/round_01/revealed.npz' in differ.stdout
    assert '2 differ' in differ.stdout
