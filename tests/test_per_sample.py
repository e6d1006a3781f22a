"""Per-sample gradients from one batched backward equal each sample's own
backward (torch.func's vmap over grad), layer kind by layer kind."""
import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from mmsaal.per_sample import Unsupported, per_sample_gradients


class Block(nn.Module):
    """A residual block with in-place ReLU and an in-place sum, as
    mmpretrain's BasicBlock has them."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=2, dilation=2,
                               bias=True)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class Tokens(nn.Module):
    """A Linear over a sequence (middle dims summed)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(32, 8)

    def forward(self, x):
        return self.proj(x.flatten(2).transpose(1, 2)).mean(1)


def network() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16),
        nn.ReLU(inplace=True), Block(16), Block(16),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=4), Tokens(),
        nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 10))
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2)
            module.weight.data.normal_()
            module.bias.data.normal_()
    return net.eval()


def reference(net, x):
    """Each sample's gradient of its cross-entropy against its argmax."""
    state = dict(net.named_buffers())
    weights = {n: p.detach() for n, p in net.named_parameters()}

    def loss(w, xi):
        logits = functional_call(net, dict(state, **w), (xi[None], ))
        return nn.functional.cross_entropy(logits, logits.argmax(1).detach())

    return vmap(grad(loss), in_dims=(None, 0))(weights, x)


def argmax_losses(net, x):
    """``losses`` for the functions under test: each sample's cross-entropy
    against its own argmax, as SAAL's pseudo-labels give it."""
    def losses():
        logits = net(x)
        return nn.functional.cross_entropy(logits, logits.argmax(1).detach(),
                                           reduction='none')

    return losses


def test_per_sample_gradients_equal_each_samples_own_backward():
    net = network()
    x = torch.randn(6, 3, 16, 16)
    params = list(net.parameters())

    losses = argmax_losses(net, x)

    ours = per_sample_gradients(net, params, losses)
    expected = reference(net, x)
    for (name, param), got in zip(net.named_parameters(), ours):
        assert got.shape == (6, ) + param.shape, name
        want = expected[name].detach()
        assert torch.allclose(got, want, rtol=1e-4,
                              atol=1e-5 * want.abs().max()), name
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize('net_kind', ['residual', 'few_positions'])
def test_per_sample_gradients_written_into_buffers_reused(net_kind):
    """Into buffers of more rows than samples, twice over (the second
    batch overwrites the first), a layer run twice included: each
    sample's own gradient."""
    torch.manual_seed(1)
    if net_kind == 'residual':
        net, shape = network().double(), (3, 16, 16)
    else:
        net, shape = FewPositions().double(), (3, 8, 8)
    params = list(net.parameters())
    out = [torch.full((7, ) + p.shape, float('nan'), dtype=p.dtype)
           for p in params]
    for size in (5, 4):
        x = torch.randn((size, ) + shape, dtype=torch.float64)

        losses = argmax_losses(net, x)

        grads = per_sample_gradients(net, params, losses, out=out)
        expected = reference(net, x)
        for (name, _), got, buffer in zip(net.named_parameters(), grads,
                                          out):
            assert got.data_ptr() == buffer.data_ptr(), name
            assert torch.allclose(got, expected[name].detach(),
                                  rtol=1e-10, atol=1e-14), name


def test_a_subset_of_parameters_and_unsupported_layers():
    net = network()
    x = torch.randn(4, 3, 16, 16)

    def losses():
        return net(x).logsumexp(1)

    head = list(net[-1].parameters())
    grads = per_sample_gradients(net, head, losses)
    assert [g.shape for g in grads] == [(4, 10, 8), (4, 10)]
    net.train()  # BatchNorm now mixes the samples of a batch
    with pytest.raises(Unsupported, match='training mode'):
        per_sample_gradients(net, list(net.parameters()), losses)
    norm = nn.Sequential(nn.Linear(5, 5), nn.LayerNorm(5))
    with pytest.raises(Unsupported, match='LayerNorm'):
        per_sample_gradients(norm, list(norm.parameters()),
                             lambda: norm(torch.randn(3, 5)).sum(1))
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight
    with pytest.raises(Unsupported, match='shared by two layers'):
        per_sample_gradients(tied, list(tied.parameters()),
                             lambda: tied(torch.randn(3, 4)).sum(1))


class FewPositions(nn.Module):
    """Convolutions with fewer output positions than channels (unfolded
    patches), one with a single position (an outer product), a grouped
    one, and a layer run twice (its gradients add up before the norm)."""

    def __init__(self) -> None:
        super().__init__()
        self.wide = nn.Conv2d(3, 24, 3, stride=2, padding=1)
        self.grouped = nn.Conv2d(24, 24, 3, stride=2, padding=1, groups=3)
        self.twice = nn.Conv2d(24, 24, 1, bias=False)
        self.point = nn.Conv2d(24, 20, 2)
        self.head = nn.Linear(20, 10)

    def forward(self, x):
        x = self.grouped(torch.relu(self.wide(x)))
        x = self.twice(torch.tanh(self.twice(x)))
        return self.head(torch.relu(self.point(x)).flatten(1))


@pytest.mark.parametrize('block_bytes', [4 * 2**20, 3000, 40])
@pytest.mark.parametrize('net_kind', ['residual', 'few_positions'])
@pytest.mark.parametrize('weighted', [True, False])
def test_per_sample_norms_equal_the_norms_of_the_gradients(
        block_bytes, net_kind, weighted, monkeypatch):
    """||T g_i|| (T = |w|, ASAM's, or 1, SAM's) without the per-sample
    gradients, in blocks down to a few rows of one sample's gradient,
    equals the norm of each sample's own gradient (float64)."""
    from mmsaal import per_sample
    monkeypatch.setattr(per_sample, 'BLOCK_BYTES', block_bytes)
    if net_kind == 'residual':
        net = network().double()
        x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    else:
        torch.manual_seed(1)
        net = FewPositions().double()
        x = torch.randn(5, 3, 8, 8, dtype=torch.float64)

    losses = argmax_losses(net, x)

    named = list(net.named_parameters())
    params = [p for _, p in named]
    scales = [p.abs() for p in params] if weighted else None
    loss, norms = per_sample.per_sample_norms(net, params, losses, scales)
    expected = reference(net, x)
    want = sum((expected[n].detach() * (p.detach().abs() if weighted else 1)
                ).square().flatten(1).sum(1) for n, p in named).sqrt()
    assert torch.allclose(norms, want, rtol=1e-10), (norms, want)
    assert torch.equal(loss, losses().detach())
    assert all(p.grad is None for p in params)


def test_the_norms_of_each_layer_come_apart():
    """``square_norms`` of one layer's call (what ``benchmark_scoring.py
    --parts`` times by output size) is that layer's share of each
    sample's ``||T g_i||^2``."""
    from mmsaal.per_sample import layer_inputs_and_grads, square_norms
    net = network().double()
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64)

    losses = argmax_losses(net, x)

    params = list(net.parameters())
    scales = [p.abs() for p in params]
    _, layers = layer_inputs_and_grads(net, params, losses)
    expected = reference(net, x)
    names = {id(p): n for n, p in net.named_parameters()}
    assert len(layers) == len({id(m) for m in net.modules()
                               if list(m.parameters(recurse=False))})
    for module, a, b in layers:
        want = sum((expected[names[id(p)]] * p.detach().abs()
                    ).square().flatten(1).sum(1)
                   for p in module.parameters(recurse=False))
        got = square_norms([(module, a, b)], params, scales)
        assert torch.allclose(got, want, rtol=1e-10), type(module)


class ChangesAnInput(nn.Module):
    """A layer's input changed in place after the layer ran (``in_place``)
    or not: its kept input must be the one it saw."""

    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.in_place = in_place
        self.fc1, self.fc2, self.fc3 = (nn.Linear(6, 6) for _ in range(3))

    def forward(self, x):
        h = self.fc1(x) * 2
        y = self.fc2(h)
        h = h.add_(1) if self.in_place else h + 1
        return y + self.fc3(h)


def test_an_input_changed_in_place_after_its_layer_is_refused():
    """A layer's kept input is the tensor it saw, not a copy: changed in
    place afterwards, the layer's gradients would be wrong, so it is
    refused (autograd refuses to train such a model too); changed out of
    place, the gradients are each sample's own."""
    torch.manual_seed(0)
    for in_place in (True, False):
        net = ChangesAnInput(in_place).double()
        x = torch.randn(4, 6, dtype=torch.float64)

        losses = argmax_losses(net, x)

        if in_place:
            with pytest.raises(Unsupported, match='Linear was changed'):
                per_sample_gradients(net, list(net.parameters()), losses)
            continue
        ours = per_sample_gradients(net, list(net.parameters()), losses)
        expected = reference(net, x)
        for (name, _), got in zip(net.named_parameters(), ours):
            assert torch.allclose(got, expected[name].detach(),
                                  rtol=1e-10), name


@pytest.mark.parametrize('net_kind', ['residual', 'few_positions'])
def test_a_forward_with_per_sample_weights_is_each_samples_own(net_kind):
    """Each sample under its own weights (all of them, or only some
    layers'), through products, grouped convolutions, a Linear over a
    sequence and eval BatchNorm, equals torch.func's vmap over
    functional_call; the layers' own forward is back afterwards."""
    from mmsaal.per_sample import forward_with_per_sample_weights
    torch.manual_seed(2)
    if net_kind == 'residual':
        net, shape = network().double(), (3, 16, 16)
    else:
        net, shape = FewPositions().double(), (3, 8, 8)
    x = torch.randn((5, ) + shape, dtype=torch.float64)
    named = list(net.named_parameters())
    for moving in (named, named[1::3]):
        weights = {n: p.detach() + 0.1 * torch.randn((5, ) + p.shape,
                                                      dtype=p.dtype)
                   for n, p in moving}
        state = dict(net.named_buffers(), **{n: p.detach()
                                             for n, p in named})

        def one(w, xi):
            return functional_call(net, dict(state, **w), (xi[None], ))[0]

        expected = vmap(one)(weights, x)
        with torch.no_grad():
            got = forward_with_per_sample_weights(
                net, [p for _, p in moving], list(weights.values()),
                lambda: net(x))
        assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert all('forward' not in m.__dict__ for m in net.modules())


@pytest.mark.parametrize('conv', [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
         dilation=(1, 2)),
    dict(kernel_size=(1, 3), stride=(1, 3), padding=(0, 2), groups=2),
    dict(kernel_size=2, stride=2),
], ids=['same', 'uneven', 'grouped', 'no_padding'])
@pytest.mark.parametrize('layout', ['contiguous', 'channels_last'])
def test_a_convolutions_patches_are_its_unfolded_input(conv, layout):
    """The patches that per-sample products and the forward under
    per-sample weights multiply are ``F.unfold``'s, in its order, per
    group, whatever the kernel, stride, padding, dilation and memory
    layout of the input."""
    from mmsaal.per_sample import _patches
    module = nn.Conv2d(4, 6, **conv)
    x = torch.randn(3, 4, 7, 9)
    if layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    want = nn.functional.unfold(x, module.kernel_size, module.dilation,
                                module.padding, module.stride)
    got = _patches(module, x)
    assert got.shape == (3, module.groups,
                         want.shape[1] // module.groups, want.shape[2])
    assert torch.equal(got.flatten(1, 2), want)
    weight = module.weight.detach().view(module.groups, 6 // module.groups,
                                         -1)
    products = torch.cat([weight[g] @ got[:, g]
                          for g in range(module.groups)], 1)
    out = module(x).detach() - module.bias.detach()[:, None, None]
    assert torch.allclose(products, out.flatten(2), atol=1e-5)
