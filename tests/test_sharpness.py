import copy

import pytest
import torch
from torch import nn

from conftest import float32_rise_tolerance
from mmsaal import ascent_step, perturbed_loss


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


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_gradients_autograd_shares_between_parameters_are_scaled_once(mode):
    # d/da and d/db of ((a + b)^2).sum() are one tensor (AddBackward passes
    # it to both), and d/dc of c.sum() an expanded view: the in-place step
    # must copy them, not scale the shared tensor twice.
    torch.manual_seed(0)
    a, b, c = (nn.Parameter(torch.randn(3, 4)) for _ in range(3))

    def loss():
        return ((a + b)**2).sum() + c.sum()

    shared = 2 * (a + b).detach()
    grads = [shared, shared, torch.ones(3, 4)]
    weights = [p.detach() for p in (a, b, c)]
    if mode == 'adaptive':
        scaled = [w.abs() * g for w, g in zip(weights, grads)]
        norm = torch.sqrt(sum((s**2).sum() for s in scaled))
        steps = [0.05 * w.abs() * s / norm for w, s in zip(weights, scaled)]
    else:
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        steps = [0.05 * g / norm for g in grads]
    expected = ((weights[0] + steps[0] + weights[1] + steps[1])**2).sum() + (
        weights[2] + steps[2]).sum()
    _, after = perturbed_loss(loss, [a, b, c], rho=0.05, mode=mode)
    assert after.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
@pytest.mark.parametrize('rho', [0.05, 0.5])
def test_ascent_step_is_the_formula_of_the_method(mode, rho):
    """eps = rho * T^2 g / ||T g|| (ASAM, T = |w|) or rho * g / ||g|| (SAM),
    one global norm; the inputs are left as they were."""
    torch.manual_seed(0)
    params = [torch.randn(3, 4), torch.randn(5)]
    grads = [torch.randn(3, 4), torch.randn(5)]
    kept = [g.clone() for g in grads]
    eps = ascent_step(params, grads, rho=rho, mode=mode)
    scale = [p.abs() for p in params] if mode == 'adaptive' else [
        torch.ones_like(p) for p in params]
    norm = torch.sqrt(sum(((t * g)**2).sum() for t, g in zip(scale, grads)))
    for step, t, g in zip(eps, scale, grads):
        torch.testing.assert_close(step, rho * t * t * g / (norm + 1e-12))
    # The step has radius rho in the metric T^-1.
    radius = torch.sqrt(sum(((e / t)**2).sum() for e, t in zip(eps, scale)))
    assert float(radius) == pytest.approx(rho, rel=1e-5)
    for g, k in zip(grads, kept):
        assert torch.equal(g, k)


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_first_order_value_is_l0_plus_rho_times_the_scaled_gradient_norm(
        mode):
    """L1 ~ L0 + rho * ||T g||, with T = |w| (ASAM) or the identity (SAM),
    written out by hand; no parameter moves, no .grad is written; element
    losses give the instance's (mean) values."""
    from mmsaal.sharpness import first_order_loss
    model = small_net(2)
    torch.manual_seed(3)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4, ))
    params = list(model[3].parameters())
    snapshot = [p.detach().clone() for p in model.parameters()]

    def closure():
        return nn.functional.cross_entropy(model(x), y, reduction='none')

    before, after = first_order_loss(closure, params, rho=0.05, mode=mode)
    loss = closure().mean()
    grads = torch.autograd.grad(loss, params)
    scaled = [g * p.abs() if mode == 'adaptive' else g
              for g, p in zip(grads, params)]
    norm = torch.sqrt(sum((s**2).sum() for s in scaled))
    assert before.dim() == after.dim() == 0
    torch.testing.assert_close(before, loss.detach())
    torch.testing.assert_close(after, loss.detach() + 0.05 * norm)
    for p, q in zip(model.parameters(), snapshot):
        assert torch.equal(p, q) and p.grad is None
    # At a small radius it is the exact perturbed loss to first order.
    exact_before, exact_after = perturbed_loss(closure, params, rho=1e-4,
                                               mode=mode)
    _, first = first_order_loss(closure, params, rho=1e-4, mode=mode)
    rise = float(exact_after.mean() - exact_before.mean())
    assert float(first - before) == pytest.approx(
        rise, rel=0.02, abs=float32_rise_tolerance(exact_before.mean()))


def test_loss_pair_names_the_approximations():
    from mmsaal.sharpness import first_order_loss, loss_pair
    assert loss_pair('exact') is perturbed_loss
    assert loss_pair('first_order') is first_order_loss
    with pytest.raises(ValueError, match='approximation must be one of'):
        loss_pair('second_order')


@pytest.mark.parametrize('mode', ['adaptive', 'sam'])
def test_batched_perturbed_weights_are_each_instances_own_step(mode):
    """Written over the per-instance gradients, w + eps_i is w +
    batched_ascent_steps' eps_i, and each eps_i is ascent_step of
    instance i's own gradient (float64)."""
    from mmsaal.sharpness import (batched_ascent_steps,
                                  batched_perturbed_weights_)
    torch.manual_seed(0)
    params = [torch.randn(4, 3, dtype=torch.float64),
              torch.randn(5, dtype=torch.float64)]
    grads = [torch.randn(6, 4, 3, dtype=torch.float64),
             torch.randn(6, 5, dtype=torch.float64)]
    grads[1][2] = 0  # one tensor of one instance without gradient
    eps, norm = batched_ascent_steps(params, grads, 0.1, mode)
    moved = [g.clone() for g in grads]
    got = batched_perturbed_weights_(params, moved, 0.1, mode)
    assert torch.allclose(got, norm, rtol=1e-12)
    for param, step, weights in zip(params, eps, moved):
        assert torch.allclose(weights, param + step, rtol=1e-12)
    for i in range(6):
        own = ascent_step(params, [g[i] for g in grads], 0.1, mode)
        for step, want in zip(eps, own):
            assert torch.allclose(step[i], want, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match='perturbation mode'):
        batched_perturbed_weights_(params, moved, 0.1, 'other')
