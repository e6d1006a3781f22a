# Copyright (c) mmsaal contributors. All rights reserved.
"""Time and memory of SAAL scoring against plain inference, in one process.

Scores the same N pool images (of a detector, of a segmentor: the target
pool of a domain-adaptive config, or of a classifier), one at a time or in
batches of ``--batch-size``, with
(1) plain inference (``model.test_step``): the floor;
(2) SAAL, ``perturb_scope='head'`` (backbone + neck features cached; a
    two-stage detector keeps its RoIs, ``recompute_proposals=None``);
(3) SAAL, ``perturb_scope='all'``;
(4) the naive procedure (deep copy per image, full forward / backward /
    forward), as SAAL's classification code does: for a classifier, its
    scoring procedure itself (``naive_classification_scores``);
(5) on request, ``exact_<scope>``: a detector's perturbed pass with the
    proposals recomputed (``recompute_proposals=True``);
    ``first_order_<scope>``: SAAL's first-order value
    ``L0 + rho * ||T g||`` (``approximation='first_order'``), one forward
    and one backward, no perturbed pass; ``backward`` (classifiers): one
    forward and one backward of the batch's summed losses, no per-image
    gradient, the floor of first order; ``batched_all``: a classifier's
    ``'all'`` scope with the images' own gradients from one batched
    backward (``per_sample='batched'``; ``saal_all`` goes one image at a
    time); and ``fixed_rois_head``: the
    perturbed loss on the unperturbed pass's RPN targets, RoIs and RoI
    features (``recompute_proposals=False``, two-stage detectors);
and prints each as a ratio to (1), the peak memory of each (a fresh process
per method, so peaks do not mix), and the largest relative difference
between the scores of (3) and (4). Every other scoring method is compared
with the exact head scores (``exact_head``, else ``saal_head``): Spearman's
rank correlation and the overlap of their top-k queries (``--top-k``).
Memory comes twice: ``peak MB`` is the resident set, which keeps what
glibc's allocator holds on to after a free; ``live MB`` is the heap in use
(``mallinfo2``), what the tensors and the interpreter hold at the time.
``--parts`` times the parts of SAAL ``head`` on their own and prints what
they sum to: a lower bound for a segmentor; for a detector, an estimate per
path and the part beyond inference that costs most; for a classifier, the
parts of batched first order (the backward to the perturbed layers'
outputs, the per-sample norms by the layers' output size) beside the plain
backward.

Example::

    python tools/benchmark_scoring.py configs/demo/saal_tiny_faster_rcnn_shapes.py --num-images 20
    python tools/benchmark_scoring.py configs/demo/saal_tiny_faster_rcnn_shapes.py \
        --methods inference saal_head fixed_rois_head first_order_head --interleave
    python tools/benchmark_scoring.py configs/demo/saal_tiny_deeplabv3plus_street_domains.py
    python tools/benchmark_scoring.py configs/demo/saal_tiny_resnet_digits.py \
        --batch-size 100 --num-images 400 --checkpoint CHECKPOINT

For a segmentor, a score is the image's mean perturbed pixel loss, and
SAAL's loss maps are what the region and pixel queries rank.
"""
import argparse
import ctypes
import functools
import multiprocessing as mp
import os
import queue as queue_module
import threading
import time
from collections import defaultdict

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate

import mmsaal  # noqa: F401
from mmsaal.analysis import rank_correlation, top_k_overlap
from mmsaal.apis.measure import fastest_seconds, model_and_pool
from mmsaal.pool_samplers import SAALSampler
from mmsaal.testing import (naive_classification_scores,
                            naive_detection_scores, naive_segmentation_maps)

NAIVE_FIELDS = ('rho', 'score_thr', 'max_pseudo_per_img', 'seed')
#: What the fork server imports before it forks the measuring processes
#: (``--start-method forkserver``): this tool, and the libraries whose
#: models and datasets a config builds.
PRELOAD = ('__main__', 'mmdet.models', 'mmdet.datasets', 'mmseg.models',
           'mmseg.datasets', 'mmpretrain.models', 'mmpretrain.datasets')
#: Method name prefixes (followed by a perturb_scope) and the SAALSampler
#: fields they score with.
VARIANTS = {
    'saal_': dict(),
    'exact_': dict(recompute_proposals=True),
    'first_order_': dict(approximation='first_order'),
    'fixed_rois_': dict(recompute_proposals=False),
    # Classifiers, perturb_scope='all': the images' own gradients from one
    # batched backward (saal_all goes one image at a time).
    'batched_first_order_': dict(per_sample='batched',
                                 approximation='first_order'),
    'batched_': dict(per_sample='batched'),
}


def naive_scores(model, batch, settings) -> list:
    """The perturbed loss of each image by the naive procedure."""
    mode = settings.get('perturbation', 'adaptive')
    if is_classifier(model):
        return [after for _, after in naive_classification_scores(
            model, batch, rho=settings.get('rho', 0.05), mode=mode)]
    if hasattr(model, 'decode_head'):
        return [
            float(after.mean()) for _, after in naive_segmentation_maps(
                model, batch, rho=settings.get('rho', 0.05), mode=mode)
        ]
    return [
        after for _, after in naive_detection_scores(
            model,
            batch,
            mode=mode,
            **{k: v
               for k, v in settings.items() if k in NAIVE_FIELDS})
    ]


def is_classifier(model) -> bool:
    """An mmpretrain classifier (scored by ``ClassificationSAAL``)."""
    return hasattr(model, 'head') and not hasattr(model, 'decode_head') \
        and type(model).__name__.endswith('Classifier')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights to score with')
    parser.add_argument('--num-images', type=int, default=20)
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images per batch of inference and SAAL (the naive procedure '
        'takes one image at a time whatever it is); classifiers score many '
        'images at once')
    parser.add_argument(
        '--repeats',
        type=int,
        default=1,
        help='time this many passes over the images and keep the fastest '
        '(small models: a shared machine\'s slow spells then do not decide '
        'the ratios)')
    parser.add_argument(
        '--methods',
        nargs='+',
        default=['inference', 'saal_head', 'saal_all', 'naive'])
    parser.add_argument(
        '--interleave',
        action='store_true',
        help='time the methods in one process, in turn on each image '
        '(memory and scores still come from a process per method)')
    parser.add_argument(
        '--parts',
        action='store_true',
        help='also time the parts of SAAL head (segmentors: backbone, decode '
        'head forward and backward; detectors: backbone + neck, heads, '
        'loss, backward, perturbed pass) or, for a classifier, of batched '
        'first order (backward to the layer outputs, per-sample norms by '
        'output size) and print what they sum to')
    parser.add_argument(
        '--top-k',
        type=int,
        help='query size of the top-k overlap with saal_head (default: a '
        'fifth of the images)')
    parser.add_argument(
        '--start-method',
        choices=['spawn', 'forkserver'],
        default='spawn',
        help='how the process of each method starts: a new interpreter '
        '(spawn), or a fork of a server that imported the libraries once '
        '(forkserver: about 10 s less a method; its peak MB then counts '
        'only the library pages the method touches, so compare peaks of '
        'one start method only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t)
                for name in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd',
                             'usmblks', 'fsmblks', 'uordblks', 'fordblks',
                             'keepcost')]


def _heap_in_use():
    """A function giving the bytes malloc has handed out and not got back
    (glibc's ``mallinfo2``), or None where it does not exist."""
    try:
        libc = ctypes.CDLL('libc.so.6')
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2

    def in_use() -> int:
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


class PeakMemory:
    """Samples the resident set, and the heap in use (what tensors hold,
    without what the allocator keeps after a free), every millisecond."""

    def __enter__(self):
        self._heap = _heap_in_use()
        self.peak = rss_bytes()
        self.peak_live = self._heap() if self._heap else None
        self._running = True
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        self.peak = max(self.peak, rss_bytes())
        if self._heap:
            self.peak_live = max(self.peak_live, self._heap())

    def _watch(self):
        while self._running:
            self._sample()
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self._sample()


def saal_settings(cfg: Config) -> dict:
    """The config's SAALSampler fields (pseudo-label threshold, ...)."""
    sampler = dict(cfg.get('active_learning', {}).get('pool_sampler', {}))
    if sampler.pop('type', None) not in ('SAALSampler', 'mmsaal.SAALSampler'):
        return {}
    sampler.pop('perturb_scope', None)
    sampler['score'] = 'max'  # the naive column reports the perturbed loss
    return sampler


def argmax_losses(model, inputs):
    """A classifier's per-image losses of ``inputs`` against its own
    argmax, as SAAL's pseudo-labels (a function, for ``per_sample``)."""
    def losses():
        logits = model(inputs, mode='tensor')
        return model.head.loss_module(logits, logits.argmax(1).detach(),
                                      reduction_override='none')

    return losses


def method_step(name, model, settings):
    """A function scoring one batch the way method ``name`` does."""
    if name == 'inference':
        def step(batch):
            with torch.no_grad():
                model.test_step(batch)
            return [0.0] * len(batch['inputs'])
    elif name.startswith(tuple(VARIANTS)):
        prefix = next(p for p in VARIANTS if name.startswith(p))
        fields = {k: v for k, v in settings.items()
                  if k not in ('approximation', 'recompute_proposals',
                               'per_sample')}
        sampler = SAALSampler(perturb_scope=name[len(prefix):],
                              **VARIANTS[prefix], **fields)
        def step(batch):
            return sampler.score_batch(model, batch)
    elif name == 'naive':
        def step(batch):
            return naive_scores(model, batch, settings)
    elif name == 'backward':
        if not is_classifier(model):
            raise ValueError('the backward method times classifiers')
        params = [p for p in model.parameters() if p.requires_grad]

        def step(batch):
            inputs = model.data_preprocessor(batch, False)['inputs']
            with torch.enable_grad():
                torch.autograd.grad(argmax_losses(model, inputs)().sum(),
                                    params)
            return [0.0] * len(batch['inputs'])
    else:
        raise ValueError(f'unknown method {name}')
    return step


def run_method(name, model, batches, settings, repeats: int = 1):
    """Seconds per image, peak memory and the scores of one method."""
    step = method_step(name, model, settings)
    step(batches[0])  # warm-up (allocator, lazy inits)
    seconds = float('inf')
    with PeakMemory() as memory:
        for _ in range(repeats):
            scores = []
            start = time.perf_counter()
            for batch in batches:
                scores.extend(step(batch))
            seconds = min(seconds, time.perf_counter() - start)
    return dict(seconds=seconds / len(scores), peak=memory.peak,
                peak_live=memory.peak_live, scores=scores)


def interleaved_seconds(names, model, batches, settings,
                        repeats: int = 1) -> dict:
    """Seconds per image of every method, timed in turn on each image, so
    a slow spell of the machine weighs on all methods alike."""
    steps = {name: method_step(name, model, settings) for name in names}
    for step in steps.values():
        step(batches[0])
    totals = dict.fromkeys(names, 0.0)
    for _ in range(repeats):
        for batch in batches:
            for name, step in steps.items():
                start = time.perf_counter()
                step(batch)
                totals[name] += time.perf_counter() - start
    images = sum(len(batch['inputs']) for batch in batches)
    return {name: total / (repeats * images)
            for name, total in totals.items()}


def measure_interleaved(args, queue):
    model, batches, settings = setup(args)
    queue.put(interleaved_seconds(args.methods, model, batches, settings,
                                  args.repeats))


PART_REPEATS = 3


best_seconds = functools.partial(fastest_seconds, repeats=PART_REPEATS)


def head_parts(model, batches) -> dict:
    """Seconds per image of a segmentor's backbone (+ neck), decode-head
    forward, and decode-head forward + backward of its pixel losses against
    its argmax (what SAAL ``head`` runs per image)."""
    from mmseg.models.utils import resize

    from mmsaal.adapters.segmentation import SegmentationSAAL
    adapter = SegmentationSAAL(model)
    params = [p for p in model.decode_head.parameters() if p.requires_grad]
    totals = dict(inference=0.0, backbone=0.0, head_forward=0.0,
                  head_forward_backward=0.0)
    for batch in batches:
        inputs = model.data_preprocessor(batch, False)['inputs']
        with torch.no_grad():
            totals['inference'] += best_seconds(lambda: model.test_step(batch))
            features = model.extract_feat(inputs)
            totals['backbone'] += best_seconds(
                lambda: model.extract_feat(inputs))
            totals['head_forward'] += best_seconds(
                lambda: model.decode_head.forward(features))

        def forward_backward():
            logits = resize(model.decode_head.forward(features),
                            size=inputs.shape[2:], mode='bilinear',
                            align_corners=model.decode_head.align_corners)
            losses = adapter.pixel_losses(logits, logits.argmax(1).detach())
            torch.autograd.grad(losses.mean(), params, allow_unused=True)

        totals['head_forward_backward'] += best_seconds(forward_backward)
    return {key: value / len(batches) for key, value in totals.items()}


def detector_parts(model, batches) -> dict:
    """Seconds per image of what SAAL ``head`` runs on a detector whose
    heads mmsaal calls directly: the backbone + neck, the first head's
    forward (the RPN, or the dense head), the prediction from it, the rest
    of the unperturbed loss (proposals, sampling, RoIAlign, RoI head), its
    backward, and the perturbed pass without autograd: exact (the whole
    loss again) and, for two-stage detectors, on fixed RoIs."""
    from mmsaal.adapters.base import sum_losses
    from mmsaal.adapters.detection import (DetectionSAAL, TwoStageHeads,
                                           pseudo_sample)
    adapter = DetectionSAAL(model, 'head')
    heads = adapter.heads
    if heads is None:
        raise ValueError(f'--parts times detectors whose heads mmsaal calls '
                         f'directly; {type(model).__name__} goes through '
                         f'its own loss()')
    totals = defaultdict(float)
    for batch in batches:
        data = model.data_preprocessor(batch, False)
        inputs, sample = data['inputs'], data['data_samples'][0]
        with torch.no_grad():
            totals['inference'] += best_seconds(lambda: model.test_step(batch))
            totals['backbone'] += best_seconds(
                lambda: model.extract_feat(inputs))
            feats = model.extract_feat(inputs)
            totals['first_forward'] += best_seconds(lambda: heads.first(feats))
            first = heads.first(feats)
            totals['predict'] += best_seconds(
                lambda: heads.predict(feats, first, sample))
            pseudo = pseudo_sample(sample, heads.predict(feats, first, sample),
                                   adapter.score_thr,
                                   adapter.max_pseudo_per_img)
        first = heads.first(feats)  # with autograd, as SAAL keeps it
        totals['loss_forward'] += best_seconds(
            lambda: heads.loss(feats, first, pseudo))
        if isinstance(heads, TwoStageHeads):  # where the loss's time goes
            totals['rpn_loss'] += best_seconds(
                lambda: heads.rpn_loss(first, pseudo))
            totals['proposals'] += best_seconds(
                lambda: heads.loss_proposals(first, pseudo))
            kept = heads.loss_proposals(first, pseudo)
            # roi_head.loss renames the proposals' fields: one copy a call.
            totals['roi_loss'] += best_seconds(
                lambda: model.roi_head.loss(
                    feats, [p.clone() for p in kept], [pseudo]))
        totals['loss_forward_backward'] += best_seconds(
            lambda: torch.autograd.grad(
                sum_losses(heads.loss(feats, first, pseudo)), adapter.params,
                retain_graph=True, allow_unused=True))
        with torch.no_grad():
            totals['perturbed_exact'] += best_seconds(
                lambda: heads.loss(feats, heads.first(feats), pseudo))
            if adapter.fixed_rois:
                fixed = heads.fixed_roi_losses(feats, pseudo)
                fixed(heads.first(feats))  # keeps the targets and RoIs
                totals['perturbed_fixed_rois'] += best_seconds(
                    lambda: fixed(heads.first(feats)))
    return {key: value / len(batches) for key, value in totals.items()}


def classifier_parts(model, batches, settings) -> dict:
    """Seconds per image of what batched first order runs on a classifier
    (``perturb_scope='all'``): one forward and one backward of the images'
    losses to every perturbed layer's output, then the per-sample norms
    from those layers' inputs and output gradients, timed by the layers'
    output size; beside inference and the plain backward."""
    from mmsaal.adapters import perturbed_parameters
    from mmsaal.per_sample import layer_inputs_and_grads, square_norms
    params = [p for _, p in perturbed_parameters(model, 'all')]
    scales = None if settings.get('perturbation') == 'sam' else [
        p.detach().abs() for p in params]
    backward = method_step('backward', model, settings)
    totals = defaultdict(float)
    for batch in batches:
        losses = argmax_losses(
            model, model.data_preprocessor(batch, False)['inputs'])
        with torch.no_grad():
            totals['inference'] += best_seconds(lambda: model.test_step(batch))
        totals['backward'] += best_seconds(lambda: backward(batch))
        totals['to_outputs'] += best_seconds(
            lambda: layer_inputs_and_grads(model, params, losses))
        groups = defaultdict(list)
        first_size = {}
        for module, a, b in layer_inputs_and_grads(model, params, losses)[1]:
            # Both calls of a layer called twice go with its first.
            size = first_size.setdefault(module, 'x'.join(
                map(str, b.shape[2:])) if b.dim() == 4 else 'vectors')
            groups[size].append((module, a, b))
        for size, layers in groups.items():
            totals[f'norms {size}'] += best_seconds(
                lambda: square_norms(layers, params, scales))
    images = sum(len(batch['inputs']) for batch in batches)
    return {key: value / images for key, value in totals.items()}


def measure_parts(args, queue):
    model, batches, settings = setup(args)
    if is_classifier(model):
        queue.put(classifier_parts(model, batches, settings))
        return
    parts = head_parts if hasattr(model, 'decode_head') else detector_parts
    queue.put(parts(model, batches))


def print_parts(parts: dict) -> None:
    if 'first_forward' in parts:
        print_detector_parts(parts)
        return
    if 'to_outputs' in parts:
        print_classifier_parts(parts)
        return
    inference, head = parts['inference'], parts['head_forward']
    backward = parts['head_forward_backward'] - head
    floor = (inference + head + backward) / inference
    print(f'\nfastest of {PART_REPEATS}, s/img: inference {inference:.3f}, '
          f'backbone {parts["backbone"]:.3f}, decode head forward '
          f'{head:.3f}, its backward {backward:.3f} '
          f'({backward / head:.2f}x its forward)')
    print(f'SAAL head = inference + one more head forward + one head '
          f'backward: at least {floor:.2f}x inference')


def print_classifier_parts(parts: dict) -> None:
    """Batched first order's parts and what they sum to, beside the plain
    backward."""
    inference, outputs = parts['inference'], parts['to_outputs']
    norms = {key[len('norms '):]: value for key, value in parts.items()
             if key.startswith('norms ')}
    total = outputs + sum(norms.values())
    print(f'\nfastest of {PART_REPEATS}, s/img: inference {inference:.4f}, '
          f'plain backward {parts["backward"]:.4f} '
          f'({parts["backward"] / inference:.2f}x inference)')
    print(f'batched first order = forward + backward to every perturbed '
          f'layer\'s output {outputs / inference:.2f}x + per-sample norms '
          f'{sum(norms.values()) / inference:.2f}x (by output size: ' +
          ', '.join(f'{size} {value / inference:.2f}x'
                    for size, value in norms.items()) +
          f'): its parts sum to {total / inference:.2f}x inference')


def print_detector_parts(parts: dict) -> None:
    """The parts, and what each scoring path's parts sum to: SAAL ``head``
    = inference + the unperturbed loss (beyond the first head's forward,
    which the prediction shares) + its backward + the perturbed pass; first
    order leaves the perturbed pass out. Each part is timed on its own
    (fastest of :data:`PART_REPEATS`), so the sum estimates the path's
    floor to within the machine's noise; it is not a bound."""
    inference = parts['inference']
    loss = parts['loss_forward']
    extra = dict(loss_forward=loss,
                 backward=parts['loss_forward_backward'] - loss)
    print(f'\nfastest of {PART_REPEATS}, s/img: inference {inference:.3f} '
          f'(backbone + neck {parts["backbone"]:.3f}, first head '
          f'{parts["first_forward"]:.3f}, prediction '
          f'{parts["predict"]:.3f}); loss beyond the first head '
          f'{loss:.3f}' + (
              f' (RPN targets + loss {parts["rpn_loss"]:.3f}, proposals '
              f'{parts["proposals"]:.3f}, RoI assignment + sampling + '
              f'RoIAlign + RoI head {parts["roi_loss"]:.3f})'
              if 'rpn_loss' in parts else '') +
          f', its backward {extra["backward"]:.3f}; perturbed '
          f'pass {parts["perturbed_exact"]:.3f} exact' +
          (f', {parts["perturbed_fixed_rois"]:.3f} on fixed RoIs'
           if 'perturbed_fixed_rois' in parts else ''))
    paths = dict(exact=dict(extra, perturbed=parts['perturbed_exact']))
    if 'perturbed_fixed_rois' in parts:
        paths['fixed RoIs'] = dict(extra,
                                   perturbed=parts['perturbed_fixed_rois'])
    paths['first order'] = extra
    for path, costs in paths.items():
        floor = (inference + sum(costs.values())) / inference
        largest = max(costs, key=costs.get)
        print(f'SAAL head, {path}: its parts sum to {floor:.2f}x '
              f'inference; the largest part beyond inference is {largest} '
              f'({costs[largest] / inference:.2f}x inference)')


def setup(args):
    """The model (eval mode) and the first ``--num-images`` pool batches."""
    cfg, model, items = model_and_pool(args.config, args.cfg_options,
                                       args.checkpoint, args.num_images)
    size = args.batch_size
    return model, [pseudo_collate(items[i:i + size])
                   for i in range(0, len(items), size)], saal_settings(cfg)


def measure(args, name, queue):
    """Run one method in this (fresh) process and report it."""
    model, batches, settings = setup(args)
    queue.put(run_method(name, model, batches, settings, args.repeats))


def print_agreement(results: dict, k: int) -> None:
    """Every scoring method against the exact head scores: ``exact_head``
    (detectors: proposals recomputed), else ``saal_head``."""
    name = next((n for n in ('exact_head', 'saal_head') if n in results),
                None)
    if name is None:
        return
    reference = np.asarray(results[name]['scores'])
    others = [n for n in results
              if n not in ('inference', 'backward', name)]
    if not others:
        return
    print(f'\nagreement with {name} ({len(reference)} images, top-{k} '
          f'query):')
    print(f'{"method":<20}{"spearman":>10}{"top-k overlap":>15}')
    for name in others:
        scores = np.asarray(results[name]['scores'])
        print(f'{name:<20}{rank_correlation(scores, reference):>10.3f}'
              f'{top_k_overlap(scores, reference, k):>15.2f}')


def child_result(context, target, *args):
    """What ``target(*args, queue)`` puts on its queue, run in a fresh
    process; a child that dies first stops the benchmark (its traceback
    is on stderr) instead of leaving it waiting."""
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    while True:
        try:
            result = queue.get(timeout=1)
            break
        except queue_module.Empty:
            if not child.is_alive():
                raise SystemExit(f'{target.__name__} failed in its process '
                                 f'(exit code {child.exitcode}); its error '
                                 f'is above')
    child.join()
    return result


def main():
    args = parse_args()
    # A process per method, so that peaks do not mix; never a fork of this
    # one once its OpenMP threads run (that deadlocks).
    context = mp.get_context(args.start_method)
    if args.start_method == 'forkserver':
        context.set_forkserver_preload(list(PRELOAD))
    results = {}
    for name in args.methods:
        results[name] = child_result(context, measure, args, name)
    if args.interleave:
        for name, seconds in child_result(context, measure_interleaved,
                                          args).items():
            results[name]['seconds'] = seconds
    base = results.get('inference', next(iter(results.values())))
    count = len(base['scores'])
    timing = ', timed in turn on each image' if args.interleave else ''
    print(f'\n{count} images, {torch.get_num_threads()} threads, '
          f'{os.path.basename(args.config)}{timing}')
    live = base['peak_live'] is not None
    print(f'{"method":<18}{"s/img":>9}{"x infer":>9}{"peak MB":>10}'
          f'{"x infer":>9}' + (f'{"live MB":>10}{"x infer":>9}' if live
                               else ''))
    for name, r in results.items():
        row = (f'{name:<18}{r["seconds"]:>9.3f}'
               f'{r["seconds"] / base["seconds"]:>9.2f}'
               f'{r["peak"] / 2**20:>10.0f}{r["peak"] / base["peak"]:>9.2f}')
        if live:
            row += (f'{r["peak_live"] / 2**20:>10.0f}'
                    f'{r["peak_live"] / base["peak_live"]:>9.2f}')
        print(row)
    print_agreement(results, args.top_k or max(1, count // 5))
    if 'saal_all' in results and 'naive' in results:
        ours = np.asarray(results['saal_all']['scores'])
        ref = np.asarray(results['naive']['scores'])
        diff = np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-12))
        print(f'max relative difference saal_all vs naive: {diff:.2e}')
    if args.parts:
        print_parts(child_result(context, measure_parts, args))


if __name__ == '__main__':
    main()
