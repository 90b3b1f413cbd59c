import torch

from csalic.codec.color import merge_luma_chroma, rgb_to_ycbcr, split_luma_chroma, ycbcr_to_rgb


def test_round_trip_is_exact_to_float_precision():
    x = torch.rand(3, 3, 17, 29, dtype=torch.float64)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-12)
    x32 = torch.rand(2, 3, 8, 8)
    assert (ycbcr_to_rgb(rgb_to_ycbcr(x32)) - x32).abs().max() < 1e-6


def test_bt601_full_range_values():
    colours = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).view(4, 3, 1, 1)
    ycc = rgb_to_ycbcr(colours).view(4, 3)
    assert torch.allclose(ycc[0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)   # white: no chroma
    assert torch.allclose(ycc[1], torch.zeros(3), atol=1e-6)
    assert torch.allclose(ycc[2], torch.tensor([0.299, -0.168736, 0.5]), atol=1e-5)  # red: Cr at its maximum
    assert torch.allclose(ycc[3], torch.tensor([0.114, 0.5, -0.081312]), atol=1e-5)  # blue: Cb at its maximum


def test_grey_has_zero_chroma_and_split_merge_inverts():
    grey = torch.rand(2, 1, 6, 6).expand(2, 3, 6, 6)
    luma, chroma = split_luma_chroma(grey)
    assert chroma.abs().max() < 1e-6
    assert torch.allclose(luma[:, 0], grey[:, 0], atol=1e-6)
    x = torch.rand(1, 3, 5, 7)
    assert torch.allclose(merge_luma_chroma(*split_luma_chroma(x)), x, atol=1e-6)


def test_differentiable():
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    split_luma_chroma(x)[1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
