import numpy as np
import pytest
import torch
from skimage import color as skcolor
from skimage import data

from colorcli import color


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    photo = data.astronaut()[::4, ::4].astype(np.float32) / 255.0
    extremes = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]], np.float32)
    return np.concatenate([photo.reshape(1, -1, 3), extremes], axis=1)


def test_numpy_rgb_to_lab_matches_skimage(rgb):
    np.testing.assert_allclose(color.rgb_to_lab(rgb), skcolor.rgb2lab(rgb), atol=0.02)


def test_torch_rgb_to_lab_matches_skimage(rgb):
    batch = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    lab = color.rgb_to_lab_nchw(batch)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(lab, skcolor.rgb2lab(rgb), atol=0.02)


def test_lab_to_rgb_matches_skimage_and_round_trips(rgb):
    lab = skcolor.rgb2lab(rgb).astype(np.float32)
    np.testing.assert_allclose(color.lab_to_rgb(lab), skcolor.lab2rgb(lab), atol=1e-3)
    np.testing.assert_allclose(color.lab_to_rgb(color.rgb_to_lab(rgb)), rgb, atol=1e-3)
    back = color.lab_to_rgb_nchw(torch.from_numpy(lab).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    np.testing.assert_allclose(back.numpy(), rgb, atol=1e-3)


def test_out_of_gamut_lab_is_clipped_not_wrapped():
    rgb = color.lab_to_rgb(np.array([[50.0, 150.0, -150.0]], np.float32))
    assert np.all((rgb >= 0) & (rgb <= 1)) and np.isfinite(rgb).all()


def test_tint_spread_is_the_rms_of_a_b_about_one_tint_per_band_of_lightness():
    lab = np.zeros((2, 8, 3), np.float32)
    lab[..., 0] = 52.5
    lab[0, :, 1], lab[1, :, 1] = 10.0, -10.0  # one band, its tint a = 0: every pixel strays by 10
    assert color.tint_spread(color.lab_to_rgb(lab)) == pytest.approx(10.0, abs=0.05)
    toned = np.stack(np.broadcast_arrays(np.linspace(20.0, 90.0, 64), 6.0, 18.0), axis=-1)
    assert color.tint_spread(color.lab_to_rgb(toned)) == pytest.approx(0.0, abs=0.05)
    grey = np.repeat(np.linspace(0.0, 1.0, 64)[:, None], 3, axis=-1)
    assert color.tint_spread(grey) == pytest.approx(0.0, abs=0.05)


def test_grey_to_lightness_is_l_of_grey_pixels():
    grey = np.linspace(0, 1, 256, dtype=np.float32)
    expected = skcolor.rgb2lab(np.repeat(grey[:, None], 3, axis=1)[None])[0, :, 0]
    np.testing.assert_allclose(color.grey_to_lightness(grey), expected, atol=0.01)


def test_lightness_to_grey_inverts_grey_to_lightness():
    grey = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(color.lightness_to_grey(color.grey_to_lightness(grey)), grey, atol=2e-5)
    assert color.lightness_to_grey(np.array([50.0]))[0] == pytest.approx(0.4663, abs=1e-4)  # sRGB 119


def test_normalisation_round_trips_and_bounds_the_gamut():
    assert color.normalise_l(0.0) == -1.0 and color.normalise_l(100.0) == 1.0
    assert color.denormalise_ab(color.normalise_ab(37.5)) == pytest.approx(37.5)
    cube = np.stack(np.meshgrid(*[np.linspace(0, 1, 17)] * 3), -1).reshape(-1, 3)
    assert np.abs(color.normalise_ab(color.rgb_to_lab(cube)[:, 1:])).max() < 1.0
