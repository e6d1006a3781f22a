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
        nn.ReLU(), nn.Linear(8, 10))
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
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


def test_per_sample_gradients_equal_each_samples_own_backward():
    net = network()
    x = torch.randn(6, 3, 16, 16)
    params = list(net.parameters())

    def losses():
        logits = net(x)
        return nn.functional.cross_entropy(logits, logits.argmax(1).detach(),
                                           reduction='none')

    ours = per_sample_gradients(net, params, losses)
    expected = reference(net, x)
    for (name, param), got in zip(net.named_parameters(), ours):
        assert got.shape == (6, ) + param.shape, name
        want = expected[name].detach()
        assert torch.allclose(got, want, rtol=1e-4,
                              atol=1e-5 * want.abs().max()), name
    assert all(p.grad is None for p in params)


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
