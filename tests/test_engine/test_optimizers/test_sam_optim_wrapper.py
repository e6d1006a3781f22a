"""SAMOptimWrapper against a hand-written SAM / ASAM on a small network
with BatchNorm, through mmengine's own ``train_step``."""
import copy
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from torch import nn

from mmsaal.engine.optimizers import SAMOptimWrapper
from mmsaal.registry import OPTIM_WRAPPERS


class TinyNet(BaseModel):

    def __init__(self):
        super().__init__(data_preprocessor=dict(type='BaseDataPreprocessor'))
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self.fc(self.bn(self.conv(inputs)).relu().mean((2, 3)))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, data_samples))
        return logits


def make_batches(count):
    generator = torch.Generator().manual_seed(0)
    return [
        dict(inputs=torch.randn(4, 3, 8, 8, generator=generator),
             data_samples=torch.randint(0, 2, (4, ), generator=generator))
        for _ in range(count)
    ]


def hand_written_sam(model, batches, rho, adaptive, accumulate=1,
                     max_norm=None, lr=0.1):
    """SAM / ASAM written out, one update per ``accumulate`` batches."""
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)

    def gradient(group):
        total = [torch.zeros_like(p) for p in params]
        for batch in group:
            loss = F.cross_entropy(model(batch['inputs']),
                                   batch['data_samples']) / accumulate
            for t, g in zip(total, torch.autograd.grad(loss, params)):
                t += g
        return total

    for start in range(0, len(batches), accumulate):
        group = batches[start:start + accumulate]
        g = gradient(group)
        if adaptive:
            scaled = [p.detach().abs() * gi for p, gi in zip(params, g)]
            norm = torch.cat([s.flatten() for s in scaled]).norm()
            eps = [rho * p.detach().abs() * s / (norm + 1e-12)
                   for p, s in zip(params, scaled)]
        else:
            norm = torch.cat([gi.flatten() for gi in g]).norm()
            eps = [rho * gi / (norm + 1e-12) for gi in g]
        statistics = copy.deepcopy(model.bn.state_dict())
        original = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, e in zip(params, eps):
                p.add_(e)
        g2 = gradient(group)
        model.bn.load_state_dict(statistics)
        with torch.no_grad():
            for p, o in zip(params, original):
                p.copy_(o)
        for p, gi in zip(params, g2):
            p.grad = gi
        if max_norm is not None:
            nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        optimizer.zero_grad()


def train_with_wrapper(model, batches, **fields):
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='mmsaal.SAMOptimWrapper',
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1,
                                       momentum=0.9),
             **fields))
    for batch in batches:
        model.train_step(batch, optim_wrapper=wrapper)
    return wrapper


@pytest.mark.parametrize('adaptive', [False, True], ids=['sam', 'asam'])
@pytest.mark.parametrize('accumulate, max_norm', [(1, None), (2, 0.5)],
                         ids=['plain', 'accumulated_and_clipped'])
def test_the_wrapper_trains_as_hand_written_sam(adaptive, accumulate,
                                                max_norm):
    torch.manual_seed(0)
    model = TinyNet()
    reference = copy.deepcopy(model)
    batches = make_batches(6)
    fields = dict(rho=0.2, adaptive=adaptive, accumulative_counts=accumulate)
    if max_norm is not None:
        fields['clip_grad'] = dict(max_norm=max_norm)
    train_with_wrapper(model, batches, **fields)
    hand_written_sam(reference, batches, 0.2, adaptive, accumulate, max_norm)
    for (name, value), expected in zip(model.state_dict().items(),
                                       reference.state_dict().values()):
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6,
                                   msg=name)
    # And SAM is not plain SGD: the same batches without it end elsewhere.
    torch.manual_seed(0)
    plain = TinyNet()
    wrapper = OptimWrapper(
        torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9),
        accumulative_counts=accumulate)
    for batch in batches:
        plain.train_step(batch, optim_wrapper=wrapper)
    assert not torch.allclose(plain.fc.weight, model.fc.weight)


def test_the_perturbed_forward_leaves_batch_norm_statistics_alone():
    torch.manual_seed(0)
    model = TinyNet()
    once = copy.deepcopy(model)
    batch = make_batches(1)[0]
    train_with_wrapper(model, [batch], rho=0.5)
    once(batch['inputs'])  # one forward in train mode
    for name in ('running_mean', 'running_var', 'num_batches_tracked'):
        torch.testing.assert_close(
            getattr(model.bn, name), getattr(once.bn, name), msg=name)


def test_the_wrapper_refuses_what_it_cannot_do():
    model = TinyNet()
    with pytest.raises(ValueError, match='rho must be > 0'):
        SAMOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), rho=0)
    wrapper = SAMOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    batch = make_batches(1)[0]
    loss = model(batch['inputs'], batch['data_samples'], mode='loss')['loss']
    with pytest.raises(RuntimeError, match='inside `with optim_wrapper'):
        wrapper.update_params(loss)
    with pytest.raises(TypeError, match='no data_preprocessor'):
        with wrapper.optim_context(nn.Linear(2, 2)):
            pass


SAM = ['optim_wrapper.type=mmsaal.SAMOptimWrapper', 'optim_wrapper.rho=0.05']


@pytest.mark.parametrize('task', ['detection', 'segmentation'])
def test_a_detector_and_a_segmentor_train_an_epoch_with_sam(
        task, voc_shapes, street_domains, tmp_path):
    from conftest import (SEG_DEMO_CONFIG, quick_options, run_train_al,
                          seg_quick_options)
    if task == 'detection':
        options, config = quick_options(voc_shapes, rounds=0), None
    else:
        options, config = seg_quick_options(street_domains,
                                            rounds=0), SEG_DEMO_CONFIG
    work_dir = str(tmp_path / 'run')
    result = run_train_al(work_dir, options + SAM,
                          **({'config': config} if config else {}))
    log = result.stdout + result.stderr
    assert 'Epoch(train) [1]' in log and 'Active learning summary' in log
    dumped = open(glob.glob(osp.join(work_dir, '*.py'))[0]).read()
    assert "type='mmsaal.SAMOptimWrapper'" in dumped
