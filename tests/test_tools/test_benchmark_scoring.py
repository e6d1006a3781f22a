"""tools/benchmark_scoring.py on the demo detector, segmentor and
classifier: every column printed, SAAL 'all' equal to the naive procedure,
both cost breakdowns."""
import re
import sys

import pytest

from conftest import (DEMO_CONFIG, PYTHONPATH, REPO, SEG_DEMO_CONFIG,
                      data_options, run_python, seg_data_options)

METHODS = ('inference', 'saal_head', 'saal_all', 'naive', 'exact_head',
           'first_order_head')
#: The runs fork their methods' processes from a server, which spares each
#: method the 10 s of imports of a new interpreter; arguments and results
#: are pickled as with spawn, the default, which the test of a measuring
#: process that dies still starts.
FORKSERVER = ('--start-method', 'forkserver')


def benchmark(config: str, options: list, *extra: str,
              num_images: int = 2) -> str:
    result = run_python(
        'tools/benchmark_scoring.py',
        [config, '--num-images', num_images, *extra, '--cfg-options',
         *options], env={'PYTHONPATH': PYTHONPATH, 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0, result.stderr[-5000:]
    return result.stdout


def table(stdout: str) -> dict:
    """``{method: [s/img, x infer, peak MB, x infer, live MB, x infer]}``."""
    rows = {}
    for line in stdout.split('agreement with')[0].splitlines():
        fields = line.split()
        if fields and fields[0] in METHODS + ('backward', ):
            rows[fields[0]] = [float(f) for f in fields[1:]]
    return rows


def max_difference(stdout: str) -> float:
    found = re.search(r'saal_all vs naive: (\S+)', stdout)
    assert found, stdout
    return float(found.group(1))


def check_columns(rows: dict, methods=METHODS) -> None:
    assert set(rows) == set(methods)
    for method, row in rows.items():
        assert len(row) == 6, method
        assert all(value > 0 for value in row), method
    assert rows['inference'][1] == rows['inference'][3] == 1.0


def agreement(stdout: str) -> dict:
    """``{method: (spearman, top-k overlap)}`` against exact_head."""
    found = re.search(r'agreement with exact_head \((\d+) images, top-(\d+) '
                      r'query\):\n.*\n((?:\S+ +\S+ +\S+\n)+)', stdout)
    assert found, stdout
    return {
        fields[0]: (float(fields[1]), float(fields[2]))
        for fields in (line.split() for line in found.group(3).splitlines())
    }


def test_detector_columns_and_equal_scores(voc_shapes):
    stdout = benchmark(DEMO_CONFIG, data_options(voc_shapes), '--methods',
                       *METHODS, '--top-k', '2', '--parts',
                       *FORKSERVER, num_images=3)
    check_columns(table(stdout))
    assert max_difference(stdout) < 1e-4
    rows = agreement(stdout)
    assert set(rows) == {'saal_head', 'saal_all', 'naive',
                         'first_order_head'}
    for spearman, overlap in rows.values():
        assert -1 <= spearman <= 1 and overlap in (0.0, 0.5, 1.0)
    # The parts of SAAL head and the floor each path's parts set.
    parts = re.search(r'loss beyond the first head (\S+) \(RPN targets \+ '
                      r'loss (\S+), proposals (\S+), .* RoI head (\S+)\)',
                      stdout)
    assert parts and all(float(v.rstrip(',')) > 0 for v in parts.groups())
    floors = dict(re.findall(r'SAAL head, (.+): its parts sum to (\S+)x '
                             r'inference; the largest part beyond inference '
                             r'is \w+', stdout))
    assert set(floors) == {'exact', 'fixed RoIs', 'first order'}
    # Sums of the same parts, first order's without a perturbed pass.
    assert float(floors['first order']) <= min(float(floors['fixed RoIs']),
                                               float(floors['exact']))


def test_a_measuring_process_that_dies_stops_the_benchmark():
    """Before, the parent waited on the dead child's queue for ever."""
    import multiprocessing as mp

    sys.path.insert(0, f'{REPO}/tools')  # the child imports it by name
    try:
        import benchmark_scoring
        with pytest.raises(SystemExit, match='measure_parts failed in its '
                           'process'):
            benchmark_scoring.child_result(
                mp.get_context('spawn'), benchmark_scoring.measure_parts,
                None)  # no arguments: setup() fails in the child
    finally:
        sys.path.pop(0)


def test_segmentor_columns_and_parts(street_domains):
    stdout = benchmark(SEG_DEMO_CONFIG, seg_data_options(street_domains),
                       '--methods', 'inference', 'saal_head', '--parts',
                       '--interleave', '--repeats', '2', *FORKSERVER)
    check_columns(table(stdout), ('inference', 'saal_head'))
    assert 'timed in turn on each image' in stdout
    floor = re.search(r'at least (\S+)x inference', stdout)
    assert floor and float(floor.group(1)) > 1.0, stdout
    assert re.search(r'its backward \S+ \(\S+x its forward\)', stdout)


def test_classifier_columns_batched_and_equal_to_the_reference(tmp_path):
    """On the digits classifier, in batches: every column, SAAL 'all'
    equal to the reference's per-image procedure, head against all."""
    from mmsaal.datasets.synthetic import write_digits
    write_digits(str(tmp_path))
    config = f'{REPO}/configs/demo/saal_tiny_resnet_digits.py'
    out = benchmark(config, [f'test_dataloader.dataset.data_root={tmp_path}/',
                             f'train_dataloader.dataset.data_root={tmp_path}/'],
                    '--batch-size', '6', '--methods', 'inference',
                    'saal_head', 'saal_all', 'naive', 'backward',
                    '--parts', *FORKSERVER, num_images=12)
    check_columns(table(out), ('inference', 'saal_head', 'saal_all',
                               'naive', 'backward'))
    assert max_difference(out) < 1e-4
    assert re.search(r'agreement with saal_head \(12 images', out), out
    # Batched first order's parts: the digits' 8x8 to 1x1 stages and
    # the linear head, adding up to what is printed.
    parts = re.search(r"output (\S+)x \+ per-sample norms (\S+)x \(by "
                      r"output size: (.+)\): its parts sum to (\S+)x", out)
    assert parts, out
    outputs, norms, sizes, total = parts.groups()
    sizes = dict(item.split() for item in sizes.split(', '))
    assert set(sizes) == {'8x8', '4x4', '2x2', '1x1', 'vectors'}, sizes
    assert all(float(v.rstrip('x')) > 0 for v in sizes.values())
    assert float(norms) == pytest.approx(
        sum(float(v.rstrip('x')) for v in sizes.values()), abs=0.02)
    assert float(total) == pytest.approx(float(outputs) + float(norms),
                                         abs=0.02)
    assert re.search(r'plain backward \S+ \(\S+x inference\)', out), out
