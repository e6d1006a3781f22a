import copy

import pytest
import torch
from torch import nn

from mmsaal import perturbed_loss


def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def naive_perturbed_loss(model, x, y, rho, mode, scope):
    """The classification reference, written out: deepcopy, backward,
    perturb, forward."""
    model = copy.deepcopy(model)
    params = [p for n, p in model.named_parameters() if n.startswith(scope)]
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        if mode == 'adaptive':
            norm = torch.sqrt(sum(((p.abs() * p.grad)**2).sum()
                                  for p in params))
            steps = [rho * p.abs()**2 * p.grad / (norm + 1e-12)
                     for p in params]
        else:
            norm = torch.sqrt(sum((p.grad**2).sum() for p in params))
            steps = [rho * p.grad / (norm + 1e-12) for p in params]
        for p, e in zip(params, steps):
            p.add_(e)
        after = nn.functional.cross_entropy(model(x), y)
    return loss.item(), after.item()


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
@pytest.mark.parametrize('rho', [0.01, 0.05, 0.5])
@pytest.mark.parametrize('scope', ['', '3.'])
def test_matches_naive_reference(mode, rho, scope):
    model = small_net(0).double()
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([2])
    expected = naive_perturbed_loss(model, x, y, rho, mode, scope)
    params = [p for n, p in model.named_parameters() if n.startswith(scope)]
    before, after = perturbed_loss(
        lambda: nn.functional.cross_entropy(model(x), y), params, rho, mode)
    assert before.item() == pytest.approx(expected[0], rel=1e-5)
    assert after.item() == pytest.approx(expected[1], rel=1e-5)
    # The step is an ascent step: the loss grows at small rho.
    if rho <= 0.05:
        assert after.item() > before.item()


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_leaves_parameters_bit_for_bit_and_no_grad(mode):
    model = small_net(1)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(1, 3, 8, 8), torch.tensor([1])
    perturbed_loss(lambda: nn.functional.cross_entropy(model(x), y),
                   list(model.parameters()), 0.3, mode)
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshot[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_restores_even_when_the_perturbed_pass_fails():
    model = small_net(2)
    snapshot = [p.clone() for p in model.parameters()]
    calls = []

    def closure():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError('boom')
        return model(torch.randn(1, 3, 8, 8)).sum()

    with pytest.raises(RuntimeError, match='boom'):
        perturbed_loss(closure, list(model.parameters()))
    assert all(torch.equal(p, s) for p, s in zip(model.parameters(),
                                                 snapshot))


def test_unreached_parameter_gets_no_step_and_bad_mode_is_refused():
    model = small_net(3)
    unused = nn.Parameter(torch.ones(3))
    x = torch.randn(1, 3, 8, 8)
    before, after = perturbed_loss(lambda: model(x).sum(),
                                   list(model.parameters()) + [unused])
    assert torch.equal(unused, torch.ones(3))
    assert after != before
    with pytest.raises(ValueError, match='perturbation mode'):
        perturbed_loss(lambda: model(x).sum(), list(model.parameters()),
                       mode='asam')
