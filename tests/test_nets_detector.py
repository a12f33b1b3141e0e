"""The scratch detector: shapes on sizes not divisible by 2^depth, logits out, gradients, blur-pool
downsampling, and the RGB -> grayscale input convention."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from restore.config import model_config  # noqa: E402
from restore.nets.blocks import BlurPool2d  # noqa: E402
from restore.nets.detector import ScratchDetector, to_detector_input  # noqa: E402

TINY = model_config("tiny").detector


def detector(seed: int) -> ScratchDetector:
    torch.manual_seed(seed)
    return ScratchDetector(TINY)


def test_output_shape_equals_input_shape_and_is_logits():
    x = torch.rand(2, 1, 37, 53) * 2 - 1
    logits = detector(0)(x)
    assert logits.shape == x.shape
    assert logits.max() < 0  # not probabilities: logits start near log(0.01 / 0.99)
    assert torch.sigmoid(logits).mean() < 0.1


def test_padding_is_cropped_back_in_place():
    x = torch.rand(1, 1, 37, 53) * 2 - 1
    net = detector(1)
    padded = F.pad(x, (0, 3, 0, 3), mode="reflect")
    assert torch.allclose(net(x), net(padded)[..., :37, :53], atol=1e-6)


def test_gradients_reach_every_parameter():
    net = detector(2)
    net(torch.rand(2, 1, 37, 53) * 2 - 1).square().mean().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_downsamples_by_blur_pool_not_strided_convs():
    net = detector(3)
    assert sum(isinstance(m, BlurPool2d) for m in net.modules()) == TINY.depth
    assert all(m.stride == (1, 1) for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match="at least 8 pixels"):
        detector(4)(torch.zeros(1, 1, 7, 40))


def test_to_detector_input_is_luma_in_minus_one_one():
    torch.manual_seed(5)
    gray = torch.rand(2, 1, 5, 6) * 2 - 1
    assert torch.allclose(to_detector_input(gray.expand(2, 3, 5, 6)), gray, atol=1e-6)
    rgb = torch.rand(2, 3, 5, 6) * 2 - 1
    out = to_detector_input(rgb)
    assert out.shape == (2, 1, 5, 6) and out.min() >= -1 and out.max() <= 1
    green = torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1)
    assert torch.allclose(to_detector_input(green), torch.tensor(2 * 0.587 - 1).view(1, 1, 1, 1))
