import math
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from csalic.codec.nn.scsm import SCSM


def reference_iteration(chroma: torch.Tensor, s_prev: torch.Tensor) -> torch.Tensor:
    """Eq. 1 restricted to each pixel's 3x3 superpixel neighbourhood, written as plain loops."""
    _, d, height, width = chroma.shape
    h, w = s_prev.shape[-2:]
    num = torch.zeros(d, h, w, dtype=chroma.dtype)
    den = torch.zeros(h, w, dtype=chroma.dtype)
    for i in range(height):
        for j in range(width):
            ci, cj = i // 4, j // 4
            cand = [(a, b) for a in (ci - 1, ci, ci + 1) for b in (cj - 1, cj, cj + 1) if 0 <= a < h and 0 <= b < w]
            logits = torch.stack([(chroma[0, :, i, j] * s_prev[0, :, a, b]).sum() / math.sqrt(d) for a, b in cand])
            q = torch.softmax(logits, 0)
            for qk, (a, b) in zip(q, cand):
                num[:, a, b] += qk * chroma[0, :, i, j]
                den[a, b] += qk
    return (num / den).unsqueeze(0)


def test_matches_loop_reference_of_eq1():
    torch.manual_seed(1)
    chroma = torch.rand(1, 2, 12, 16, dtype=torch.float64) - 0.5
    s = F.avg_pool2d(chroma, 4)
    for _ in range(3):
        s = reference_iteration(chroma, s)
    assert torch.allclose(SCSM(iterations=3)(chroma), s, atol=1e-10)


def test_zero_iterations_is_average_pooling():
    chroma = torch.rand(2, 2, 16, 8) - 0.5
    assert torch.allclose(SCSM(iterations=0)(chroma), F.avg_pool2d(chroma, 4))


@pytest.mark.parametrize("cb,cr", [(0.0, 0.0), (0.31, -0.2), (-0.5, 0.5)])
def test_constant_colour_aggregates_to_that_colour(cb, cr):
    chroma = torch.empty(1, 2, 32, 48)
    chroma[:, 0], chroma[:, 1] = cb, cr
    s = SCSM(iterations=5)(chroma)
    assert s.shape == (1, 2, 8, 12)
    assert torch.allclose(s[:, 0], torch.full_like(s[:, 0], cb), atol=1e-6)
    assert torch.allclose(s[:, 1], torch.full_like(s[:, 1], cr), atol=1e-6)


def test_superpixels_are_convex_combinations_and_associations_sum_to_one():
    chroma = torch.rand(2, 2, 24, 24) - 0.5
    s, q = SCSM(iterations=4).aggregate(chroma)
    assert torch.allclose(q.sum(1), torch.ones(2, 24, 24), atol=1e-5)
    assert s.min() >= chroma.min() - 1e-6 and s.max() <= chroma.max() + 1e-6
    # a corner pixel has only 4 neighbouring superpixels: the other 5 get no weight
    assert q[:, :, 0, 0].gt(1e-6).sum(1).eq(4).all()


def test_two_colour_regions_stay_separate():
    chroma = torch.zeros(1, 2, 32, 32)
    chroma[:, :, :, :16] = 0.4
    chroma[:, :, :, 16:] = -0.4
    s = SCSM(iterations=5)(chroma)
    # superpixels whose 3x3 neighbourhood holds one colour keep it exactly ...
    assert torch.allclose(s[..., :3], torch.full_like(s[..., :3], 0.4), atol=1e-6)
    assert torch.allclose(s[..., 5:], torch.full_like(s[..., 5:], -0.4), atol=1e-6)
    # ... and the two at the edge lean towards their own side: pixels prefer similar superpixels
    assert (s[..., 3] > 0.1).all() and (s[..., 4] < -0.1).all()


def test_refuses_sizes_not_multiple_of_cell():
    with pytest.raises(ValueError, match="divisible by 4"):
        SCSM()(torch.zeros(1, 2, 10, 12))


def test_memory_grows_linearly_with_pixels():
    """Peak RSS of 512x512 and 1024x1024 in fresh processes: ~4x apart, and far from Eq. 1's global form
    (which would need HW*HW/16 floats: 275 GB at 1024x1024)."""
    script = textwrap.dedent(
        """
        import resource, sys, torch
        torch.set_num_threads(1)
        from csalic.codec.nn.scsm import SCSM
        side = int(sys.argv[1])
        x = torch.rand(1, 2, side, side) - 0.5
        SCSM(iterations=1)(x[..., :64, :64])
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with torch.no_grad():
            SCSM(iterations=5)(x)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
        """
    )
    used = {}
    for side in (512, 1024):
        out = subprocess.run([sys.executable, "-c", script, str(side)], capture_output=True, text=True, check=True)
        used[side] = int(out.stdout.strip().splitlines()[-1]) * 1024  # ru_maxrss is in KiB
    assert used[1024] < 1.5e9
    assert used[1024] < 8 * max(used[512], 1)
