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


def test_round_files_compare_by_what_they_mean(tmp_path):
    """A format-1 revealed.npz (a packed mask per image) and a format-2 one
    (corners, pixel positions) of the same pixels are equal; so are an
    old pixel listing and its summary, and JSON laid out otherwise."""
    import numpy as np

    from mmsaal.pool import Reveal, save_reveals
    mask = np.zeros((4, 6), bool)
    mask[1, 2] = mask[3, 5] = True
    pixels = [[1, 2], [3, 5]]
    for side, fmt in (('a', 1), ('b', 2)):
        folder = tmp_path / side / 'case' / 'rounds' / 'round_01'
        folder.mkdir(parents=True)
        if fmt == 1:
            np.savez_compressed(folder / 'revealed.npz',
                                **{'7': np.packbits(mask, axis=None),
                                   '7_shape': np.asarray(mask.shape)})
            items = [dict(index=7, name='x.png',
                          regions=[[y, x, 1, 1] for y, x in pixels],
                          scores=[0.9, 0.4])]
            text = json.dumps(dict(round=1, granularity='pixel', size=1,
                                   items=items), indent=1)
        else:
            save_reveals(str(folder / 'revealed.npz'),
                         [(7, Reveal((4, 6), 'pixel', pixels))])
            items = [dict(index=7, name='x.png', pixels=2, best=0.9,
                          last=0.4)]
            text = json.dumps(dict(round=1, granularity='pixel', size=1,
                                   items=items))
        (folder / 'regions.json').write_text(text)
    same = compare(tmp_path / 'a', tmp_path / 'b')
    assert '2 round files compared, 0 differ' in same.stdout, same.stdout
    save_reveals(str(tmp_path / 'b' / 'case' / 'rounds' / 'round_01' /
                     'revealed.npz'),
                 [(7, Reveal((4, 6), 'pixel', [[1, 2], [3, 4]]))])
    differ = compare(tmp_path / 'a', tmp_path / 'b')
    assert 'DIFFERS case/round_01/revealed.npz' in differ.stdout
