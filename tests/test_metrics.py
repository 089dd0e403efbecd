"""Fusion metrics: hand-computable cases, independent re-computations, and the conventions."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy.signal import convolve2d
from skimage.metrics import structural_similarity

from u2fusion_tf import metrics
from u2fusion_tf.metrics import (
    METRIC_NAMES,
    MetricWarning,
    average_gradient,
    compute_metrics,
    correlation_coefficient,
    edge_intensity,
    entropy,
    mutual_information,
    psnr_from_mse,
    qabf,
    spatial_frequency,
    ssim,
    ssim_map,
    sum_of_correlations_of_differences,
    vifp,
)

# numpy's own RuntimeWarnings (0/0, log of 0, mean of empty) must never leak out of a metric.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

SCALE_FREE = ("CC", "SCD")
LINEAR_IN_SCALE = ("SD", "SF", "AG", "EI")
ON_8BIT_SCALE_ALWAYS = ("EN", "MI", "Qabf")


def smooth_image(seed: int, shape: tuple[int, int] = (64, 72)) -> np.ndarray:
    """A random image in [0, 1] with structure at several scales (like a photograph, unlike
    noise)."""
    rng = np.random.default_rng(seed)
    noise = rng.random(shape)
    blurred = cv2.GaussianBlur(noise, (0, 0), 3, borderType=cv2.BORDER_REFLECT)
    image = 0.7 * (blurred - blurred.min()) / np.ptp(blurred) + 0.3 * noise
    return image / image.max()


@pytest.fixture(scope="module")
def triple() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sources A, B and a plausible fused F, all in [0, 1]."""
    a, b = smooth_image(1), smooth_image(2)
    return a, b, 0.6 * a + 0.4 * b


# --- Hand-computable cases --------------------------------------------------------------------


def test_constant_image_has_no_entropy_spread_or_detail():
    flat = np.full((16, 16), 0.4)
    values = compute_metrics(flat, flat, flat, names=["EN", "SD", "SF", "AG", "EI"])
    assert values == pytest.approx(dict.fromkeys(values, 0.0), abs=1e-12)


@pytest.mark.parametrize(("levels", "bits"), [((0, 255), 1.0), ((0, 60, 120, 250), 2.0)])
def test_equally_likely_levels_give_log2_levels_bits(levels, bits):
    image = np.resize(np.array(levels, dtype=np.float64), (8, 16))
    assert entropy(image) == pytest.approx(bits, abs=1e-12)


def test_entropy_rounds_to_uint8_levels_before_counting():
    # 99.6 and 100.4 both become grey level 100; 100.5 rounds up to 101 (as MATLAB's uint8).
    assert entropy(np.array([[99.6, 100.4]])) == 0.0
    assert entropy(np.array([[100.4, 100.5]])) == pytest.approx(1.0)


def test_step_edge_has_hand_computed_sf_ag_ei():
    height, width, step = 6, 8, 100.0
    image = np.zeros((height, width))
    image[:, width // 2 :] = step
    # One jump of `step` in each row's W-1 horizontal differences; no vertical differences.
    assert spatial_frequency(image) == pytest.approx(step / math.sqrt(width - 1))
    # Central differences see the jump at two columns, each as step/2: sqrt((step/2)^2 / 2).
    expected_ag = height * 2 * (step / 2) / math.sqrt(2) / ((height - 1) * (width - 1))
    assert average_gradient(image) == pytest.approx(expected_ag)
    # Sobel x: (1 + 2 + 1) * step at the two columns beside the jump, 0 elsewhere.
    assert edge_intensity(image) == pytest.approx(2 * height * 4 * step / (height * width))


def test_ramp_has_hand_computed_sf_ag_ei():
    height, width, slope = 5, 7, 3.0
    image = np.tile(slope * np.arange(width, dtype=np.float64), (height, 1))
    assert spatial_frequency(image) == pytest.approx(slope)
    # The gradient is `slope` everywhere, one-sided differences at the borders included.
    expected_ag = height * width * slope / math.sqrt(2) / ((height - 1) * (width - 1))
    assert average_gradient(image) == pytest.approx(expected_ag)
    # Sobel x is 4 * 2 * slope inside; a replicated border halves the difference at both ends.
    assert edge_intensity(image) == pytest.approx(4 * slope * (2 * (width - 2) + 2) / width)


def test_mutual_information_of_identical_and_independent_patterns():
    x = np.resize(np.array([0.0, 0.0, 255.0, 255.0]), (8, 8))
    y = np.resize(np.array([0.0, 255.0]), (8, 8))  # every (x, y) pair equally often
    assert mutual_information(x, x) == pytest.approx(1.0)
    assert mutual_information(x, y) == pytest.approx(0.0, abs=1e-12)


def test_mi_is_twice_the_entropy_when_all_images_are_equal(triple):
    f = triple[2]
    values = compute_metrics(f, f, f, names=["EN", "MI"])
    assert values["MI"] == pytest.approx(2 * values["EN"], rel=1e-12)


def test_correlations_of_linear_relations(triple):
    a, b, _ = triple
    assert correlation_coefficient(a, a, 2 * a + 3) == pytest.approx(1.0)
    assert correlation_coefficient(a, a, -a) == pytest.approx(-1.0)
    # F - B = A and F - A = B exactly, so each difference correlates perfectly.
    assert sum_of_correlations_of_differences(a, b, a + b) == pytest.approx(2.0)


def test_identical_images_have_ssim_one_infinite_psnr_and_vif_one(triple):
    a = triple[0]
    assert ssim(a, a, data_range=1.0) == pytest.approx(1.0, abs=1e-12)
    assert psnr_from_mse(0.0) == math.inf
    assert vifp(a, a) == pytest.approx(1.0, abs=1e-6)
    standard = compute_metrics(a, a, a, names=["SSIM"])["SSIM"]
    paper = compute_metrics(a, a, a, names=["SSIM"], convention="paper")["SSIM"]
    assert (standard, paper) == pytest.approx((1.0, 2.0), abs=1e-12)


def test_psnr_of_a_known_mse():
    assert psnr_from_mse(100.0) == pytest.approx(10 * math.log10(255**2 / 100))
    zeros, tens = np.zeros((4, 4)), np.full((4, 4), 10 / 255)
    # MSE(A, F) = 100, MSE(B, F) = 0 on the 0-255 scale: their mean is 50.
    assert compute_metrics(zeros, tens, tens, names=["PSNR"])["PSNR"] == pytest.approx(
        10 * math.log10(255**2 / 50)
    )


def test_qabf_of_perfect_preservation_is_the_sigmoid_product(triple):
    a = triple[0]
    flat = np.zeros_like(a)
    # F = A: every edge of A kept with G = 1 and A = 1; flat B carries no weight.
    expected = 0.9994 / (1 + math.exp(-15 * (1 - 0.5))) * 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))
    assert qabf(a, flat, a) == pytest.approx(expected, rel=1e-12)


# --- Undefined values: NaN with a warning naming the metric -----------------------------------


@pytest.mark.parametrize(
    ("metric", "call"),
    [
        ("CC", lambda a, flat: correlation_coefficient(flat, a, a)),
        ("SCD", lambda a, flat: sum_of_correlations_of_differences(a, flat, flat)),
        ("VIF", lambda a, flat: vifp(flat, a)),
        ("VIF", lambda a, flat: vifp(a[:40, :40], a[:40, :40])),
        ("SSIM", lambda a, flat: ssim(a[:10, :10], a[:10, :10], 1.0)),
        ("Qabf", lambda a, flat: qabf(0 * flat, 0 * flat, a)),  # zero-padded Sobel: flat is 0
        ("SF", lambda a, flat: spatial_frequency(a[:1])),
        ("AG", lambda a, flat: average_gradient(a[:, :1])),
    ],
)
def test_undefined_metric_is_nan_with_a_named_warning(triple, metric, call):
    a = triple[0]
    flat = np.full_like(a, 0.25)
    with pytest.warns(MetricWarning, match=rf"^{metric} is undefined"):
        assert math.isnan(call(a, flat))


def test_compute_metrics_reports_nan_for_an_undefined_metric_and_carries_on(triple):
    a, b, _ = triple
    flat = np.full_like(a, 0.5)
    with pytest.warns(MetricWarning, match="CC"):
        values = compute_metrics(a, b, flat)
    assert math.isnan(values["CC"])
    assert math.isfinite(values["EN"]) and math.isfinite(values["PSNR"])


# --- Against independent computations ---------------------------------------------------------


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_matches_scikit_image_over_its_uncropped_region(triple, data_range):
    a, _, f = triple
    x, y = a * data_range, f * data_range
    _, skimage_map = structural_similarity(
        x,
        y,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        full=True,
    )
    # scikit-image filters with reflected borders, then averages all but a 5-pixel frame.
    interior = skimage_map[5:-5, 5:-5]
    np.testing.assert_allclose(ssim_map(x, y, data_range), interior, rtol=0, atol=1e-9)
    assert ssim(x, y, data_range) == pytest.approx(interior.mean(), abs=1e-9)


def test_paper_ssim_constants_equal_skimage_with_range_255_on_unit_data(triple):
    a, _, f = triple
    expected = structural_similarity(
        a, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0
    )
    paper_constants = {"c1": (0.01 * 255) ** 2, "c2": (0.03 * 255) ** 2}
    assert ssim(a, f, data_range=1.0, **paper_constants) == pytest.approx(expected, abs=1e-9)


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB's fspecial('gaussian', size, sigma), built in 2-D."""
    half = (size - 1) / 2
    rows, columns = np.mgrid[-half : half + 1, -half : half + 1]
    window = np.exp(-(rows**2 + columns**2) / (2 * sigma**2))
    return window / window.sum()


def reference_vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    """A line-by-line transcription of Sheikh & Bovik's vifp_mscale.m with 2-D convolutions."""
    sigma_nsq, num, den = 2.0, 0.0, 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = fspecial_gaussian(n, n / 5)
        if scale > 1:
            ref = convolve2d(ref, win, mode="valid")[::2, ::2]
            dist = convolve2d(dist, win, mode="valid")[::2, ::2]
        mu1, mu2 = convolve2d(ref, win, mode="valid"), convolve2d(dist, win, mode="valid")
        sigma1_sq = convolve2d(ref * ref, win, mode="valid") - mu1 * mu1
        sigma2_sq = convolve2d(dist * dist, win, mode="valid") - mu2 * mu2
        sigma12 = convolve2d(ref * dist, win, mode="valid") - mu1 * mu2
        sigma1_sq[sigma1_sq < 0] = 0
        sigma2_sq[sigma2_sq < 0] = 0
        g = sigma12 / (sigma1_sq + 1e-10)
        sv_sq = sigma2_sq - g * sigma12
        mask = sigma1_sq < 1e-10
        g[mask], sv_sq[mask], sigma1_sq[mask] = 0, sigma2_sq[mask], 0
        mask = sigma2_sq < 1e-10
        g[mask], sv_sq[mask] = 0, 0
        mask = g < 0
        sv_sq[mask], g[mask] = sigma2_sq[mask], 0
        sv_sq[sv_sq <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g**2 * sigma1_sq / (sv_sq + sigma_nsq)))
        den += np.sum(np.log10(1 + sigma1_sq / sigma_nsq))
    return num / den


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_vifp_matches_the_reference_transcription(triple, scale):
    a, b, f = (image * scale for image in triple)
    # A flat patch and an inverted source exercise the flat and negative-gain clamps.
    f = f.copy()
    f[:20, :20] = f[0, 0]
    for ref, dist in [(a, f), (b, f), (f, a), (a, scale - a)]:
        assert vifp(ref, dist) == pytest.approx(reference_vifp(ref, dist), rel=1e-9)


def test_vifp_counts_a_reference_variance_below_1e_10_as_flat(triple):
    noise = np.random.default_rng(0).random(triple[0].shape)
    faint = triple[0].copy()
    faint[:40, :40] = 0.5 + 2e-5 * noise[:40, :40]  # local variance about 3e-11 at every scale
    # Taken at face value, the faint patch would claim the noise's information, giving about 0.10.
    assert vifp(faint, noise) == pytest.approx(reference_vifp(faint, noise), rel=1e-9)
    assert vifp(faint, noise) < 0.02


def reference_qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Xydeas & Petrovic's Qabf as the common MATLAB code writes it, using true convolutions."""
    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]])  # responds to vertical change
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])  # responds to horizontal change

    def strength_and_angle(image):
        sx, sy = convolve2d(image, h3, mode="same"), convolve2d(image, h1, mode="same")
        angle = np.full(image.shape, np.pi / 2)
        nonzero = sx != 0
        angle[nonzero] = np.arctan(sy[nonzero] / sx[nonzero])
        return np.sqrt(sx**2 + sy**2), angle

    def preservation(source, fused):
        (g_src, a_src), (g_f, a_f) = source, fused
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(g_src > g_f, g_f / g_src, g_src / g_f)
        relative[g_src == 0] = 0  # 0/0 or 0/x; zero weight there either way
        q_g = 0.9994 / (1 + np.exp(-15 * (relative - 0.5)))
        q_a = 0.9879 / (1 + np.exp(-22 * ((1 - np.abs(a_src - a_f) / (np.pi / 2)) - 0.8)))
        return q_g * q_a

    edges_a, edges_b, edges_f = strength_and_angle(a), strength_and_angle(b), strength_and_angle(f)
    numerator = (
        preservation(edges_a, edges_f) * edges_a[0] + preservation(edges_b, edges_f) * edges_b[0]
    )
    return np.sum(numerator) / np.sum(edges_a[0] + edges_b[0])


def test_qabf_matches_the_reference_transcription(triple):
    # On whole grey levels the Sobel sums are exact, so Gx = 0 is decided alike in both.
    a, b, f = (np.round(image * 255) for image in triple)
    f[10:30, 10:30] = 128  # a flat patch: Gx = 0 there, and edges F lost
    assert qabf(a, b, f) == pytest.approx(reference_qabf(a, b, f), rel=1e-12)


def test_qabf_is_scale_free_where_no_gradient_is_exactly_zero(triple):
    a, b, f = triple
    assert qabf(a, b, f) == pytest.approx(qabf(a * 255, b * 255, f * 255), rel=1e-9)


# --- Conventions and compute_metrics ----------------------------------------------------------


def test_convention_switch_changes_exactly_the_documented_things(triple):
    a, b, f = triple
    standard = compute_metrics(a, b, f)
    paper = compute_metrics(a, b, f, convention="paper")
    assert list(standard) == list(paper) == list(METRIC_NAMES)
    for name in ON_8BIT_SCALE_ALWAYS:
        assert paper[name] == standard[name]
    for name in SCALE_FREE:
        assert paper[name] == pytest.approx(standard[name], rel=1e-9)
    for name in LINEAR_IN_SCALE:
        assert paper[name] == pytest.approx(standard[name] / 255, rel=1e-12)
    assert paper["PSNR"] - standard["PSNR"] == pytest.approx(20 * math.log10(255), rel=1e-12)

    a8, b8, f8 = a * 255, b * 255, f * 255
    assert standard["SSIM"] == pytest.approx((ssim(a8, f8, 255) + ssim(b8, f8, 255)) / 2)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    assert paper["SSIM"] == pytest.approx(ssim(a, f, 1, c1, c2) + ssim(b, f, 1, c1, c2))
    assert 1.9 < paper["SSIM"] < 2 and paper["SSIM"] != pytest.approx(2 * standard["SSIM"])

    assert standard["VIF"] == pytest.approx(vifp(a8, f8) + vifp(b8, f8))
    assert paper["VIF"] == pytest.approx(vifp(a, f) + vifp(b, f))
    assert paper["VIF"] != pytest.approx(standard["VIF"], rel=1e-3)
    assert set(
        ON_8BIT_SCALE_ALWAYS + SCALE_FREE + LINEAR_IN_SCALE + ("PSNR", "SSIM", "VIF")
    ) == set(METRIC_NAMES)


def test_names_choose_and_order_the_metrics(triple):
    values = compute_metrics(*triple, names=["Qabf", "EN"])
    assert list(values) == ["Qabf", "EN"]
    assert values["EN"] == compute_metrics(*triple)["EN"]


def test_rgb_images_are_scored_on_their_luma(triple):
    a, b, f = triple
    tint = np.array([0.9, 1.0, 0.8])
    a_rgb, f_rgb = a[..., None] * tint, f[..., None] * tint[::-1]
    luma = metrics.to_gray(np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]))
    np.testing.assert_allclose(luma, [[0.299, 0.587, 0.114]])
    gray = compute_metrics(metrics.to_gray(a_rgb), b, metrics.to_gray(f_rgb))
    assert compute_metrics(a_rgb, b, f_rgb) == gray


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["EN", "QABF"]}, "unknown metrics"),
        ({"convention": "matlab"}, "unknown convention"),
    ],
)
def test_bad_arguments_are_rejected(triple, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(*triple, **kwargs)


@pytest.mark.parametrize(
    "images",
    [
        (np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 9))),
        (np.zeros((8, 8, 2)), np.zeros((8, 8)), np.zeros((8, 8))),
        (np.zeros((0, 8)), np.zeros((0, 8)), np.zeros((0, 8))),
    ],
)
def test_bad_images_are_rejected(images):
    with pytest.raises(ValueError, match=r"size|shape"):
        compute_metrics(*images)


def test_a_megapixel_image_is_scored_in_both_conventions():
    a, b = smooth_image(3, (1024, 1024)), smooth_image(4, (1024, 1024))
    for convention in metrics.CONVENTIONS:
        values = compute_metrics(a, b, (a + b) / 2, convention=convention)
        assert all(math.isfinite(value) for value in values.values())


def test_paper_convention_on_a_tno_pair_reads_on_the_papers_scale(shared_data):
    folder = shared_data / "u2fusion_test" / "vis-ir" / "TNO"
    if not (folder / "vis" / "1.bmp").is_file():
        pytest.skip(f"{folder} not found in ../shared/data")
    vis, ir = (
        cv2.imread(str(folder / side / "1.bmp"), cv2.IMREAD_GRAYSCALE) / 255.0
        for side in ("vis", "ir")
    )
    values = compute_metrics(vis, ir, (vis + ir) / 2, convention="paper")
    assert 1.9 < values["SSIM"] < 2
    assert 55 < values["PSNR"] < 90
    assert 0.4 < values["CC"] < 0.9


def test_8_bit_images_score_the_same_read_as_float32_or_float64(shared_data):
    """`read_image` returns uint8 / 255 in float32, so grey level k comes back as k +- 8e-6 on
    the 0-255 scale; EN, MI and Qabf must not depend on that (Qabf's exact Gx = 0 test would)."""
    from u2fusion_tf.images import read_image, to_luminance

    folder = shared_data / "roadscene"
    stem = "FLIR_00006.jpg"
    a, b = (to_luminance(read_image(folder / side / stem))[:64, :64] for side in ("vis", "ir"))
    levels = [np.round(x * 255).astype(np.uint8) for x in (a, b)]
    levels.append(((levels[0].astype(int) + levels[1]) // 2).astype(np.uint8))
    as_float32 = [x.astype(np.float32) / np.float32(255) for x in levels]
    exact = [x / 255.0 for x in levels]
    names = ["EN", "MI", "Qabf"]
    for convention in metrics.CONVENTIONS:
        read = compute_metrics(*as_float32, names, convention)
        assert read == pytest.approx(compute_metrics(*exact, names, convention), abs=1e-12)
