"""gmm.images: the article's mask formula, the true Gaussian mask, and blending."""

from __future__ import annotations

import numpy as np
import pytest

from gmm import blend, gaussian_mask


def _article_loop_mask(height, width):
    """The article's double loop: G(i, j) = exp(-d / (2R)), R the half-diagonal."""
    center_x, center_y = width / 2, height / 2
    R = np.sqrt(center_x**2 + center_y**2)
    mask = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            d = np.sqrt((i - center_y) ** 2 + (j - center_x) ** 2)
            mask[i, j] = np.exp(-0.5 * d / R)
    return mask


def test_article_mask_matches_the_loop_exactly():
    np.testing.assert_array_equal(gaussian_mask(392, 512), _article_loop_mask(392, 512))


def test_article_mask_falls_only_to_exp_minus_half():
    mask = gaussian_mask(392, 512)
    assert mask[196, 256] == 1.0
    # The corner (0, 0) is exactly R from the center (H/2, W/2).
    assert mask[0, 0] == pytest.approx(np.exp(-0.5), rel=1e-15)
    assert mask.min() == mask[0, 0]
    assert 0.0 <= mask.min() and mask.max() <= 1.0


def test_true_gaussian_mask_is_the_closed_form():
    height, width, center, sigma = 60, 90, (20.0, 70.5), 12.0
    mask = gaussian_mask(height, width, center=center, kind="gaussian", sigma=sigma)
    rows, cols = np.mgrid[0:height, 0:width]
    d2 = (rows - center[0]) ** 2 + (cols - center[1]) ** 2
    np.testing.assert_allclose(mask, np.exp(-d2 / (2 * sigma**2)), rtol=1e-14)


def test_true_gaussian_mask_defaults_reach_near_zero_in_the_corner():
    mask = gaussian_mask(392, 512, kind="gaussian")
    assert mask[0, 0] == pytest.approx(np.exp(-4.5), rel=1e-12)  # sigma = R / 3 at d = R
    assert mask.max() == 1.0


def test_article_mask_with_custom_radius_and_center():
    mask = gaussian_mask(10, 20, center=(0, 0), radius=5.0)
    assert mask[0, 0] == 1.0
    assert mask[3, 4] == pytest.approx(np.exp(-5.0 / 10.0), rel=1e-15)  # d = 5


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 3])
def test_blend_keeps_dtype_and_gives_back_F_or_B(dtype, channels):
    rng = np.random.default_rng(0)
    shape = (12, 17) if channels is None else (12, 17, channels)
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        F = rng.integers(0, top, size=shape, endpoint=True).astype(dtype)
        B = rng.integers(0, top, size=shape, endpoint=True).astype(dtype)
    else:
        F = rng.random(shape).astype(dtype)
        B = rng.random(shape).astype(dtype)
    ones, zeros = np.ones(shape[:2]), np.zeros(shape[:2])
    for mask, expected in [(ones, F), (zeros, B)]:
        out = blend(F, B, mask)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected)
    assert blend(F, None, zeros).dtype == dtype
    np.testing.assert_array_equal(blend(F, None, ones), F)
    np.testing.assert_array_equal(blend(F, None, zeros), np.zeros_like(F))


def test_blend_uint8_rounds_the_convex_combination():
    F = np.array([[255, 10]], dtype=np.uint8)
    B = np.array([[0, 11]], dtype=np.uint8)
    mask = np.array([[0.25, 0.5]])
    # 0.25·255 = 63.75 -> 64; 0.5·10 + 0.5·11 = 10.5 -> 10 (round half to even).
    np.testing.assert_array_equal(blend(F, B, mask), [[64, 10]])


def test_blend_float_image_stays_in_its_range():
    rng = np.random.default_rng(1)
    F, B = rng.random((30, 40, 3)), rng.random((30, 40, 3))
    out = blend(F, B, gaussian_mask(30, 40))
    assert out.min() >= min(F.min(), B.min()) and out.max() <= max(F.max(), B.max())
    M = gaussian_mask(30, 40)[:, :, None]
    np.testing.assert_allclose(out, M * F + (1 - M) * B, rtol=1e-15)


def test_blend_accepts_a_per_channel_mask():
    F = np.full((2, 3, 3), 100, dtype=np.uint8)
    mask = np.zeros((2, 3, 3))
    mask[..., 1] = 1.0
    out = blend(F, None, mask)
    np.testing.assert_array_equal(out[..., 1], 100)
    np.testing.assert_array_equal(out[..., 0], 0)


@pytest.mark.parametrize(
    ("F", "B", "mask", "match"),
    [
        (np.zeros((4, 5)), np.zeros((4, 6)), np.ones((4, 5)), "background has shape"),
        (np.zeros((4, 5), np.uint8), np.zeros((4, 5)), np.ones((4, 5)), "same dtype"),
        (np.zeros((4, 5)), None, np.ones((5, 4)), "mask has shape"),
        (np.zeros((4, 5, 3)), None, np.ones((4, 5, 2)), "mask has shape"),
        (np.zeros((4, 5)), None, np.full((4, 5), 1.5), r"lie in \[0, 1\]"),
        (np.zeros((4, 5)), None, np.full((4, 5), np.nan), "finite"),
        (np.zeros((4, 5)), None, None, "needs a mask"),
        (np.zeros(5), None, np.ones(5), "must have shape"),
        (np.zeros((4, 5), dtype=bool), None, np.ones((4, 5)), "integers or floats"),
    ],
)
def test_blend_bad_input_names_the_problem(F, B, mask, match):
    with pytest.raises(ValueError, match=match):
        blend(F, B, mask)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"height": 0}, "height must be a positive integer"),
        ({"width": 2.5}, "width must be a positive integer"),
        ({"kind": "cosine"}, "kind must be one of"),
        ({"radius": -1.0}, "radius must be a finite number > 0"),
        ({"kind": "gaussian", "sigma": 0}, "sigma must be a finite number > 0"),
        ({"center": (1.0,)}, "center must be a pair"),
        ({"center": (np.nan, 1.0)}, "center must be finite"),
    ],
)
def test_mask_bad_input_names_the_problem(kwargs, match):
    args = {"height": 10, "width": 12, **kwargs}
    with pytest.raises(ValueError, match=match):
        gaussian_mask(**args)


def test_a_grayscale_image_takes_a_mask_of_shape_h_w_1():
    F = np.full((3, 5), 200, np.uint8)
    np.testing.assert_array_equal(blend(F, None, np.full((3, 5, 1), 0.5)), np.full((3, 5), 100))
    with pytest.raises(ValueError, match=r"expected \(3, 5\) or \(3, 5, 1\)\.$"):
        blend(F, None, np.ones((2, 5)))


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64_bit_integer_images_are_refused_not_rounded(dtype):
    # float64 holds integers exactly only to 2**53: 2**64 - 1 came back as 0.
    F = np.full((1, 1), np.iinfo(dtype).max, dtype)
    with pytest.raises(ValueError, match="float64 cannot hold exactly"):
        blend(F, F, np.ones((1, 1)))


def test_empty_and_non_finite_images_are_refused():
    with pytest.raises(ValueError, match="no pixels"):
        blend(np.ones((0, 2), np.uint8), None, np.ones((0, 2)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        blend(np.array([[np.inf]]), None, np.zeros((1, 1)))
