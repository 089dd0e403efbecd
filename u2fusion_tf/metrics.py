"""Fusion quality metrics: how much of sources A and B a fused image F keeps.

Image-fusion papers score F without a ground truth, from F alone or from F against A and B.
Toolkits disagree on the scale the images are given in, which is why published numbers rarely
agree; here every definition is fixed, and `compute_metrics` names the convention that sets the
scale (see "Conventions" below).

Metrics (`METRIC_NAMES` order; A, B the sources, F the fused image, N the number of pixels)
-------------------------------------------------------------------------------------------
EN    Shannon entropy, -sum p log2 p, of the 256-bin histogram of F as uint8
      (Roberts et al., J. Appl. Remote Sens. 2008).
SD    Standard deviation of F, population form (1/N).
SF    Spatial frequency sqrt(RF^2 + CF^2), RF / CF the RMS of the horizontal / vertical first
      differences (Eskicioglu & Fisher, IEEE Trans. Commun. 1995).
AG    Average gradient, the paper's MG: sum of sqrt((Fx^2 + Fy^2) / 2) over all pixels divided by
      (H-1)(W-1); Fx, Fy central differences as MATLAB's `gradient` (one-sided at the borders)
      (Cui et al., Opt. Commun. 2015).
EI    Edge intensity: mean of sqrt(Gx^2 + Gy^2), Gx, Gy the 3x3 Sobel responses with replicated
      borders.
MI    Mutual information MI(A,F) + MI(B,F), each H(X) + H(F) - H(X,F) from the 256x256 joint
      histogram of the uint8 images, log2 (Qu et al., Electron. Lett. 2002).
CC    (corr(A,F) + corr(B,F)) / 2, corr the Pearson correlation over all pixels.
SCD   Sum of the correlations of differences, corr(F - B, A) + corr(F - A, B)
      (Aslantas & Bendes, AEU 2015).
SSIM  Structural similarity (Wang et al., IEEE TIP 2004): 11x11 Gaussian window, sigma 1.5,
      K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2, C2 = (K2 L)^2, mean of the map over the 'valid' region
      (no padding); the fusion SSIM combines SSIM(A,F) and SSIM(B,F) as the convention says.
PSNR  10 log10(255^2 / MSE), MSE = (MSE(A,F) + MSE(B,F)) / 2.
VIF   VIFP(A,F) + VIFP(B,F): multi-scale pixel-domain visual information fidelity (Sheikh &
      Bovik, IEEE TIP 2006), as their `vifp_mscale` reference code computes it (see `vifp`).
Qabf  Edge preservation of Xydeas & Petrovic (Electron. Lett. 2000), from Sobel gradients
      (see `qabf`).

Conventions
-----------
``standard`` (the default) is the field's usual practice: images as doubles on the 0-255 scale.
``paper`` reproduces the U2Fusion tables: images as doubles in [0, 1], yet SSIM keeps the 8-bit
stabilising constants (C1 = (0.01*255)^2, C2 = (0.03*255)^2) and adds its two terms, so it reads
about 1.99, and PSNR keeps the 255 peak over an MSE of [0, 1] data, so it reads about 60 dB.

====== ================================== ==========================================
Metric ``standard``                       ``paper``
====== ================================== ==========================================
EN     uint8 of round(255 F)              same (identical value)
MI     uint8 of round(255 X), X = A, B, F same (identical value)
SD     0-255 scale                        [0, 1] (= standard / 255)
SF     0-255 scale                        [0, 1] (= standard / 255)
AG/MG  0-255 scale                        [0, 1] (= standard / 255)
EI     0-255 scale                        [0, 1] (= standard / 255)
CC     0-255 scale                        [0, 1] (scale-free: same value)
SCD    0-255 scale                        [0, 1] (scale-free: same value)
Qabf   0-255 scale                        same (identical value; see below)
SSIM   mean of SSIM(A,F), SSIM(B,F) on    sum of SSIM(A,F), SSIM(B,F) on [0, 1] with
       0-255, L = 255                     C1 = (0.01*255)^2, C2 = (0.03*255)^2
PSNR   10 log10(255^2 / MSE), MSE on      10 log10(255^2 / MSE), MSE on [0, 1]
       0-255                              (= standard + 20 log10(255) = +48.13 dB)
VIF    0-255 scale                        [0, 1] (differs: sigma_n^2 = 2 is absolute)
====== ================================== ==========================================

EN, MI and Qabf see the 0-255 scale under both conventions. EN and MI count uint8 grey levels.
Qabf is scale-free in principle, but it singles out pixels where the Sobel Gx is exactly 0; on
whole grey levels that test is exact, while on [0, 1] data rounding decides it pixel by pixel.
So for these three, values within `LEVEL_SNAP` of a whole grey level are taken as that level:
8-bit images give the same scores whether they arrive as float32 (where k / 255 comes back as
k +- 8e-6) or as exact float64.

Undefined values (the correlation of a constant image, VIF of a flat reference, an image too
small for a window) are NaN with a `MetricWarning` naming the metric, never an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import cv2
import numpy as np

METRIC_NAMES = ("EN", "SD", "SF", "AG", "EI", "MI", "CC", "SCD", "SSIM", "PSNR", "VIF", "Qabf")
CONVENTIONS = ("standard", "paper")
PEAK = 255.0
"""The 8-bit peak: the PSNR numerator and SSIM's L under both conventions."""

LEVEL_SNAP = 1e-4
"""On the 0-255 scale, values this close to a whole grey level count as that level (EN, MI,
Qabf); far above float32's rounding of 8-bit data, far below any real difference."""

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
_SSIM_WINDOW_SIZE, _SSIM_SIGMA, _SSIM_K1, _SSIM_K2 = 11, 1.5, 0.01, 0.03
_VIF_SCALES = 4
_VIF_NOISE_VARIANCE = 2.0
_VIF_MIN_SIDE = 41
"""The smallest side for which all four VIF scales keep a non-empty 'valid' region."""
_VIF_EPSILON = 1e-10
_QABF_STRENGTH_SIGMOID = (0.9994, -15.0, 0.5)  # Gamma_g, kappa_g, sigma_g
_QABF_ORIENTATION_SIGMOID = (0.9879, -22.0, 0.8)  # Gamma_a, kappa_a, sigma_a


class MetricWarning(UserWarning):
    """A metric is undefined for the given images and was reported as NaN."""


def _undefined(metric: str, reason: str) -> float:
    warnings.warn(f"{metric} is undefined ({reason}); reporting NaN", MetricWarning, stacklevel=3)
    return math.nan


def to_gray(image: np.ndarray) -> np.ndarray:
    """A contiguous float64 (H, W) image; RGB (H, W, 3) becomes Y = 0.299R + 0.587G + 0.114B."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[2] == 3:
        image = image @ _LUMA_WEIGHTS
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a gray (H, W) or RGB (H, W, 3) image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _gray_images(*images: np.ndarray) -> list[np.ndarray]:
    """`to_gray` of each image, checking that they all have one size."""
    grays = [to_gray(image) for image in images]
    shapes = {gray.shape for gray in grays}
    if len(shapes) > 1:
        raise ValueError(f"images differ in size: {[gray.shape for gray in grays]}")
    return grays


# --- Histogram metrics (0-255 scale, quantised to uint8) --------------------------------------


def _uint8_levels(image: np.ndarray) -> np.ndarray:
    """The 0-255 image as integer grey levels, rounded half up and clipped as MATLAB's uint8()."""
    return np.clip(np.floor(image + 0.5), 0, 255).astype(np.intp)


def _entropy_of_counts(counts: np.ndarray) -> float:
    probabilities = counts[counts > 0] / counts.sum()
    return float(np.sum(probabilities * np.log2(1.0 / probabilities)))


def entropy(f: np.ndarray) -> float:
    """EN in bits: Shannon entropy of the 256-bin histogram of `f` given on the 0-255 scale."""
    (f,) = _gray_images(f)
    return _entropy_of_counts(np.bincount(_uint8_levels(f).ravel(), minlength=256))


def mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    """MI(X, Y) in bits from the 256x256 joint histogram of `x`, `y` given on the 0-255 scale."""
    x, y = _gray_images(x, y)
    pair_codes = _uint8_levels(x).ravel() * 256 + _uint8_levels(y).ravel()
    joint = np.bincount(pair_codes, minlength=256 * 256).reshape(256, 256)
    return (
        _entropy_of_counts(joint.sum(axis=1))
        + _entropy_of_counts(joint.sum(axis=0))
        - _entropy_of_counts(joint)
    )


# --- Single-image metrics (scale with the image) -------------------------------------------


def standard_deviation(f: np.ndarray) -> float:
    """SD: population standard deviation (1/N) of `f`, in its own units."""
    (f,) = _gray_images(f)
    return float(np.std(f))


def spatial_frequency(f: np.ndarray) -> float:
    """SF = sqrt(RF^2 + CF^2), RF / CF the RMS of the horizontal / vertical first differences."""
    (f,) = _gray_images(f)
    if min(f.shape) < 2:
        return _undefined("SF", "needs at least 2 pixels each way")
    row_frequency_sq = np.mean(np.diff(f, axis=1) ** 2)
    column_frequency_sq = np.mean(np.diff(f, axis=0) ** 2)
    return float(np.sqrt(row_frequency_sq + column_frequency_sq))


def average_gradient(f: np.ndarray) -> float:
    """AG (the paper's MG): sum of sqrt((Fx^2 + Fy^2) / 2) over (H-1)(W-1).

    Fx, Fy are central differences, one-sided at the borders, as MATLAB's `gradient`; the
    (H-1)(W-1) divisor follows the common MATLAB implementation.
    """
    (f,) = _gray_images(f)
    if min(f.shape) < 2:
        return _undefined("AG", "needs at least 2 pixels each way")
    fy, fx = np.gradient(f)
    height, width = f.shape
    return float(np.sum(np.sqrt((fx**2 + fy**2) / 2)) / ((height - 1) * (width - 1)))


def _sobel(image: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 Sobel responses (Gx, Gy) with the given OpenCV border mode."""
    gx = cv2.Sobel(image, cv2.CV_64F, 1, 0, ksize=3, borderType=border)
    gy = cv2.Sobel(image, cv2.CV_64F, 0, 1, ksize=3, borderType=border)
    return gx, gy


def edge_intensity(f: np.ndarray) -> float:
    """EI: mean Sobel gradient magnitude sqrt(Gx^2 + Gy^2), borders replicated."""
    (f,) = _gray_images(f)
    gx, gy = _sobel(f, cv2.BORDER_REPLICATE)
    return float(np.mean(np.sqrt(gx**2 + gy**2)))


# --- Correlation metrics (scale-free) ------------------------------------------------------


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over all pixels; NaN (silently) if either image is constant."""
    if x.min() == x.max() or y.min() == y.max():
        return math.nan
    x_centred = x - x.mean()
    y_centred = y - y.mean()
    return float(
        np.sum(x_centred * y_centred) / np.sqrt(np.sum(x_centred**2) * np.sum(y_centred**2))
    )


def correlation_coefficient(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """CC = (corr(A, F) + corr(B, F)) / 2, Pearson correlations over all pixels."""
    a, b, f = _gray_images(a, b, f)
    value = (_pearson(a, f) + _pearson(b, f)) / 2
    return _undefined("CC", "an image is constant") if math.isnan(value) else value


def sum_of_correlations_of_differences(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """SCD = corr(F - B, A) + corr(F - A, B): how much of each source F adds to the other."""
    a, b, f = _gray_images(a, b, f)
    value = _pearson(f - b, a) + _pearson(f - a, b)
    return _undefined("SCD", "a source or a difference is constant") if math.isnan(value) else value


# --- Window metrics: SSIM and VIF share Gaussian local statistics ---------------------------


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian; its outer product with itself is MATLAB's fspecial('gaussian')."""
    offsets = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable filtering keeping only pixels whose window lies inside the image ('valid')."""
    radius = kernel.size // 2
    filtered = cv2.sepFilter2D(
        np.ascontiguousarray(image), cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT
    )
    return filtered[radius:-radius, radius:-radius]  # the border mode never reaches these


def _local_moments(
    x: np.ndarray, y: np.ndarray, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windowed means, variances and covariance of x and y ('valid' region, 1/N moments)."""
    mean_x, mean_y = _filter_valid(x, kernel), _filter_valid(y, kernel)
    variance_x = _filter_valid(x * x, kernel) - mean_x**2
    variance_y = _filter_valid(y * y, kernel) - mean_y**2
    covariance = _filter_valid(x * y, kernel) - mean_x * mean_y
    return mean_x, mean_y, variance_x, variance_y, covariance


def ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    data_range: float,
    c1: float | None = None,
    c2: float | None = None,
) -> np.ndarray:
    """The SSIM map of Wang et al. 2004 over the 'valid' region: (H-10, W-10).

    Gaussian 11x11 window, sigma 1.5; C1 = (0.01 data_range)^2 and C2 = (0.03 data_range)^2
    unless given. Matches scikit-image's ``structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)`` map cropped by 5 pixels.
    """
    x, y = _gray_images(x, y)
    if min(x.shape) < _SSIM_WINDOW_SIZE:
        raise ValueError(f"SSIM needs at least {_SSIM_WINDOW_SIZE} pixels each way, got {x.shape}")
    c1 = (_SSIM_K1 * data_range) ** 2 if c1 is None else c1
    c2 = (_SSIM_K2 * data_range) ** 2 if c2 is None else c2
    if c1 <= 0 or c2 <= 0:
        raise ValueError(f"SSIM's stabilising constants must be positive, got C1={c1}, C2={c2}")
    window = _gaussian_kernel(_SSIM_WINDOW_SIZE, _SSIM_SIGMA)
    mean_x, mean_y, variance_x, variance_y, covariance = _local_moments(x, y, window)
    luminance_terms = (2 * mean_x * mean_y + c1) / (mean_x**2 + mean_y**2 + c1)
    structure_terms = (2 * covariance + c2) / (variance_x + variance_y + c2)
    return luminance_terms * structure_terms


def ssim(
    x: np.ndarray,
    y: np.ndarray,
    data_range: float,
    c1: float | None = None,
    c2: float | None = None,
) -> float:
    """SSIM(X, Y): the mean of `ssim_map`; NaN with a warning if smaller than the window."""
    if min(np.shape(x)[:2]) < _SSIM_WINDOW_SIZE:
        return _undefined("SSIM", f"needs at least {_SSIM_WINDOW_SIZE} pixels each way")
    return float(np.mean(ssim_map(x, y, data_range, c1, c2)))


def vifp(reference: np.ndarray, distorted: np.ndarray) -> float:
    """VIFP(ref, dist): Sheikh & Bovik's multi-scale pixel-domain VIF (``vifp_mscale``).

    Four scales; at scale s = 1..4 a Gaussian window of size N = 2^(5-s) + 1, sigma N/5, which
    from s = 2 on first low-passes the images ('valid') before keeping every second pixel.
    Per window: gain g = cov / (var_ref + 1e-10) and distortion variance sv^2 = var_dist - g cov,
    with the reference code's clamps: var_ref < 1e-10 (negatives included) counts as 0; g = 0
    where either variance is below 1e-10 or g < 0; sv^2 floored at 1e-10. (The reference also
    resets sv^2 wherever it zeroes g; a zero gain makes that pixel's term 0 whatever sv^2 is.)
    Returns sum log10(1 + g^2 var_ref / (sv^2 + 2)) / sum log10(1 + var_ref / 2) over all
    scales. The noise variance 2 is absolute, so the value depends on the images' scale.
    """
    reference, distorted = _gray_images(reference, distorted)
    if min(reference.shape) < _VIF_MIN_SIDE:
        return _undefined("VIF", f"needs at least {_VIF_MIN_SIDE} pixels each way")
    kept_information = total_information = 0.0
    for scale in range(1, _VIF_SCALES + 1):
        size = 2 ** (_VIF_SCALES + 1 - scale) + 1
        window = _gaussian_kernel(size, size / 5)
        if scale > 1:
            reference = _filter_valid(reference, window)[::2, ::2]
            distorted = _filter_valid(distorted, window)[::2, ::2]
        _, _, variance_ref, variance_dist, covariance = _local_moments(reference, distorted, window)
        flat_ref = variance_ref < _VIF_EPSILON  # also catches negative rounding residue
        flat_dist = variance_dist < _VIF_EPSILON
        variance_ref = np.where(flat_ref, 0, variance_ref)
        gain = np.where(flat_ref | flat_dist, 0, covariance / (variance_ref + _VIF_EPSILON))
        gain = np.maximum(gain, 0)  # inverted contrast conveys no information
        noise_variance = np.maximum(variance_dist - gain * covariance, _VIF_EPSILON)
        kept_information += np.sum(
            np.log10(1 + gain**2 * variance_ref / (noise_variance + _VIF_NOISE_VARIANCE))
        )
        total_information += np.sum(np.log10(1 + variance_ref / _VIF_NOISE_VARIANCE))
    if total_information == 0:
        return _undefined("VIF", "the reference image is flat")
    return float(kept_information / total_information)


# --- Qabf ----------------------------------------------------------------------------------


def _edge_strength_and_orientation(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel (zero-padded 'same') strength g and orientation atan(Gy/Gx), pi/2 where Gx = 0."""
    gx, gy = _sobel(image, cv2.BORDER_CONSTANT)
    # The reference code's conv2 with [-1 0 1; -2 0 2; -1 0 1] gives left minus right, the
    # negative of OpenCV's Gx. The sign matters where an image has Gx = 0: its pi/2 is compared
    # with the other image's atan(Gy/Gx), which flips sign with Gx.
    gx = -gx
    strength = np.sqrt(gx**2 + gy**2)
    slope = np.divide(gy, gx, out=np.zeros_like(gy), where=gx != 0)
    orientation = np.where(gx != 0, np.arctan(slope), np.pi / 2)
    return strength, orientation


def _sigmoid(values: np.ndarray, gamma: float, kappa: float, sigma: float) -> np.ndarray:
    return gamma / (1 + np.exp(kappa * (values - sigma)))


def _edge_preservation(
    source: tuple[np.ndarray, np.ndarray], fused: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Q^XF per pixel: how well F keeps the strength and orientation of the source's edges."""
    (source_strength, source_orientation), (fused_strength, fused_orientation) = source, fused
    stronger = np.maximum(source_strength, fused_strength)
    # Where both are flat the ratio is 0/0; those pixels carry zero weight, so any value will do.
    relative_strength = np.divide(
        np.minimum(source_strength, fused_strength),
        stronger,
        out=np.ones_like(stronger),
        where=stronger > 0,
    )
    relative_orientation = 1 - np.abs(source_orientation - fused_orientation) / (np.pi / 2)
    return _sigmoid(relative_strength, *_QABF_STRENGTH_SIGMOID) * _sigmoid(
        relative_orientation, *_QABF_ORIENTATION_SIGMOID
    )


def qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Qabf (Xydeas & Petrovic 2000): edge information of A and B preserved in F, in [0, ~0.97].

    Relative strength G = min(g_X, g_F) / max(g_X, g_F), relative orientation
    1 - |a_X - a_F| / (pi/2); Q^XF = Gamma_g / (1 + exp(kappa_g (G - sigma_g))) *
    Gamma_a / (1 + exp(kappa_a (A - sigma_a))) with (0.9994, -15, 0.5) and (0.9879, -22, 0.8);
    Qabf = sum(Q^AF g_A + Q^BF g_B) / sum(g_A + g_B) (weights g^L with L = 1). Scale-free,
    except that the exact Gx = 0 test is only reliable on whole grey levels (0-255 data).
    """
    a, b, f = _gray_images(a, b, f)
    edges_a, edges_b, edges_f = (_edge_strength_and_orientation(image) for image in (a, b, f))
    weight_a, weight_b = edges_a[0], edges_b[0]
    total_weight = np.sum(weight_a + weight_b)
    if total_weight == 0:
        return _undefined("Qabf", "both sources are flat")
    preserved = np.sum(
        _edge_preservation(edges_a, edges_f) * weight_a
        + _edge_preservation(edges_b, edges_f) * weight_b
    )
    return float(preserved / total_weight)


# --- MSE / PSNR ----------------------------------------------------------------------------


def mse(x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error over all pixels, in the images' own units squared."""
    x, y = _gray_images(x, y)
    return float(np.mean((x - y) ** 2))


def psnr_from_mse(mean_squared_error: float, peak: float = PEAK) -> float:
    """PSNR = 10 log10(peak^2 / MSE) in dB; +inf for MSE 0 (identical images)."""
    if mean_squared_error == 0:
        return math.inf
    return 10 * math.log10(peak**2 / mean_squared_error)


def _snap_to_grey_levels(image: np.ndarray) -> np.ndarray:
    """A 0-255 image with values within `LEVEL_SNAP` of a whole grey level set to that level."""
    levels = np.round(image)
    return np.where(np.abs(image - levels) <= LEVEL_SNAP, levels, image)


# --- Conventions ---------------------------------------------------------------------------


def compute_metrics(
    a: np.ndarray,
    b: np.ndarray,
    f: np.ndarray,
    names: list[str] | None = None,
    convention: str = "standard",
) -> dict[str, float]:
    """Scores fused image `f` against sources `a`, `b`, all given in [0, 1] (gray or RGB).

    `names` picks metrics from `METRIC_NAMES` (default all), in the order returned. The
    `convention` ("standard" or "paper") sets the scale each metric sees, as the module
    docstring's table says. Undefined values are NaN with a `MetricWarning`.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
    names = list(METRIC_NAMES) if names is None else list(names)
    unknown = [name for name in names if name not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; expected names from {METRIC_NAMES}")

    a, b, f = _gray_images(a, b, f)
    a_8bit, b_8bit, f_8bit = (_snap_to_grey_levels(x * PEAK) for x in (a, b, f))  # EN, MI, Qabf
    paper = convention == "paper"
    # Both conventions use the 255 peak (PSNR numerator, SSIM's L); only the data scale and the
    # way SSIM combines its two terms differ.
    a_s, b_s, f_s = (a, b, f) if paper else (a * PEAK, b * PEAK, f * PEAK)
    ssim_divisor = 1 if paper else 2  # the paper adds the two SSIM terms; standard averages

    calculators: dict[str, Callable[[], float]] = {
        "EN": lambda: entropy(f_8bit),
        "SD": lambda: standard_deviation(f_s),
        "SF": lambda: spatial_frequency(f_s),
        "AG": lambda: average_gradient(f_s),
        "EI": lambda: edge_intensity(f_s),
        "MI": lambda: mutual_information(a_8bit, f_8bit) + mutual_information(b_8bit, f_8bit),
        "CC": lambda: correlation_coefficient(a_s, b_s, f_s),
        "SCD": lambda: sum_of_correlations_of_differences(a_s, b_s, f_s),
        "SSIM": lambda: (ssim(a_s, f_s, PEAK) + ssim(b_s, f_s, PEAK)) / ssim_divisor,
        "PSNR": lambda: psnr_from_mse((mse(a_s, f_s) + mse(b_s, f_s)) / 2),
        "VIF": lambda: vifp(a_s, f_s) + vifp(b_s, f_s),
        "Qabf": lambda: qabf(a_8bit, b_8bit, f_8bit),
    }
    return {name: float(calculators[name]()) for name in names}
