import math

import numpy as np
import pytest
from scipy import stats

from cnnstudy.analysis.stats import (
    CONTRADICTED,
    NOT_SUPPORTED,
    SUPPORTED,
    equivalence_verdict,
    format_p,
    holm,
    mcnemar_exact,
    paired_accuracy,
    paired_bootstrap_interval,
    superiority_verdict,
    t_across_seeds,
    wilson_interval,
)


def wilson_by_hand(k, n, z=1.959963984540054):
    centre = (k + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * math.sqrt(k * (n - k) / n + z**2 / 4)
    return centre - half, centre + half


@pytest.mark.parametrize(("correct", "total"), [(45, 100), (0, 10), (10, 10), (3925, 3925), (2500, 3925)])
def test_wilson_matches_the_formula(correct, total):
    assert wilson_interval(correct, total, 0.95) == pytest.approx(wilson_by_hand(correct, total), abs=1e-9)


def test_wilson_stays_inside_zero_and_one_and_has_no_interval_without_images():
    low, high = wilson_interval(0, 10, 0.95)
    assert low == pytest.approx(0, abs=1e-12) and 0 < high < 0.35
    assert all(math.isnan(value) for value in wilson_interval(0, 0, 0.95))


def test_identical_predictions_give_zero_difference_zero_interval_and_p_one():
    correct = np.random.default_rng(0).random(500) < 0.6
    compared = paired_accuracy(correct, correct.copy(), 0.95, 200, seed=0)
    assert compared["difference"] == 0
    assert (compared["ci_low"], compared["ci_high"]) == (0.0, 0.0)
    assert compared["p_mcnemar"] == 1.0
    assert compared["a_only_correct"] == compared["b_only_correct"] == 0


def test_sixty_of_sixty_disagreements_is_overwhelming():
    a = np.ones(400, dtype=bool)
    b = a.copy()
    b[:60] = False  # A right and B wrong on 60 images; they agree on the other 340
    compared = paired_accuracy(a, b, 0.95, 200, seed=0)
    assert (compared["a_only_correct"], compared["b_only_correct"]) == (60, 0)
    assert compared["p_mcnemar"] == pytest.approx(2 * 0.5**60)
    assert compared["p_mcnemar"] < 1e-15
    assert compared["difference"] == pytest.approx(0.15)


def test_mcnemar_is_symmetric_and_one_without_disagreements():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(7, 3) == pytest.approx(mcnemar_exact(3, 7))
    assert mcnemar_exact(5, 5) == 1.0


def test_bootstrap_is_reproducible_for_a_seed():
    rng = np.random.default_rng(1)
    a, b = rng.random(300) < 0.7, rng.random(300) < 0.6
    first = paired_bootstrap_interval(a, b, 0.95, 400, seed=3)
    assert paired_bootstrap_interval(a, b, 0.95, 400, seed=3) == first
    assert paired_bootstrap_interval(a, b, 0.95, 400, seed=4) != first


def test_bootstrap_covers_the_true_difference_at_about_the_stated_rate():
    """Independent answers with known accuracies 0.70 and 0.60: the true difference is 0.10, and the
    standard error of the per-image mean is known, so both coverage and width can be checked."""
    n, rate_a, rate_b = 1000, 0.70, 0.60
    rng = np.random.default_rng(2)
    covered, widths = 0, []
    for trial in range(60):
        a, b = rng.random(n) < rate_a, rng.random(n) < rate_b
        low, high = paired_bootstrap_interval(a, b, 0.95, 300, seed=trial)
        covered += low <= rate_a - rate_b <= high
        widths.append(high - low)
    variance = rate_a * (1 - rate_a) + rate_b * (1 - rate_b)  # independent answers
    assert covered / 60 >= 0.85
    assert np.mean(widths) == pytest.approx(2 * 1.96 * math.sqrt(variance / n), rel=0.15)


def test_bootstrap_of_equal_differences_is_that_difference_without_a_warning():
    """scipy warns on data without spread (and may answer NaN): the known answer is given instead."""
    import warnings

    a, b = np.ones(50, dtype=bool), np.zeros(50, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert paired_bootstrap_interval(a, b, 0.95, 100, seed=0) == (1.0, 1.0)
        assert paired_bootstrap_interval(b, a, 0.95, 100, seed=0) == (-1.0, -1.0)
        assert paired_bootstrap_interval(a, a, 0.95, 100, seed=0) == (0.0, 0.0)
    assert all(math.isnan(bound) for bound in paired_bootstrap_interval([], [], 0.95, 100, seed=0))


def test_holm_matches_a_hand_computation():
    # sorted: 0.005×4 = 0.02, 0.01×3 = 0.03, 0.03×2 = 0.06, 0.04×1 = 0.04 → monotone: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_is_capped_monotone_and_passes_nan_through():
    adjusted = holm([0.5, math.nan, 0.01, 0.4])
    assert math.isnan(adjusted[1])
    # m = 3 tested: 0.01×3 = 0.03, 0.4×2 = 0.8, 0.5×1 = 0.5 → 0.8 (monotone)
    assert adjusted[[2, 3, 0]] == pytest.approx([0.03, 0.8, 0.8])
    assert holm([0.6, 0.7])[0] == 1.0
    assert len(holm([])) == 0


def test_t_across_seeds_matches_a_hand_computation():
    mean, low, high, p = t_across_seeds([0.01, 0.02, 0.03], 0.95)
    standard_error = 0.01 / math.sqrt(3)
    assert mean == pytest.approx(0.02)
    assert (low, high) == pytest.approx((0.02 - 4.302653 * standard_error, 0.02 + 4.302653 * standard_error))
    assert p == pytest.approx(0.0741799, abs=1e-6)  # t = 3.464 with 2 degrees of freedom


def test_t_across_seeds_degenerate_cases():
    assert t_across_seeds([0.0, 0.0], 0.95) == (0.0, 0.0, 0.0, 1.0)
    mean, *rest = t_across_seeds([2.0, 2.0], 0.95)
    assert mean == 2.0 and all(math.isnan(value) for value in rest)  # no spread: no test
    mean, *rest = t_across_seeds([0.1 + 0.2, 0.3], 0.95)  # equal but for the last bit
    assert mean == pytest.approx(0.3) and all(math.isnan(value) for value in rest)
    mean, *rest = t_across_seeds([0.05], 0.95)
    assert mean == 0.05 and all(math.isnan(value) for value in rest)


def test_format_p():
    assert [format_p(p) for p in (0.0321, 4.1e-5, 1e-9, math.nan)] == ["0.032", "4.1e-05", "< 1e-6", "—"]


@pytest.mark.parametrize(
    ("ci", "p_holm", "verdict"),
    [
        ((0.01, 0.05), 0.001, SUPPORTED),
        ((-0.05, -0.01), 0.001, CONTRADICTED),
        ((-0.01, 0.05), 0.2, NOT_SUPPORTED),
        ((-0.001, 0.05), 0.04, NOT_SUPPORTED),  # significant but the interval touches 0: methods disagree
        ((0.01, 0.05), 0.06, NOT_SUPPORTED),
    ],
)
def test_superiority_verdict(ci, p_holm, verdict):
    assert superiority_verdict(*ci, p_holm, 0.05)[0] == verdict


@pytest.mark.parametrize(
    ("effect", "ci", "non_negative", "verdict"),
    [
        (0.005, (-0.01, 0.015), True, SUPPORTED),
        (0.01, (-0.01, 0.03), True, NOT_SUPPORTED),  # crosses the margin
        (0.05, (0.03, 0.07), True, CONTRADICTED),  # entirely above the margin
        (-0.05, (-0.07, -0.03), False, CONTRADICTED),  # entirely below −margin
        (-0.005, (-0.01, -0.001), True, CONTRADICTED),  # inside the margin but below 0
        (-0.005, (-0.01, -0.001), False, SUPPORTED),
        (-0.001, (-0.004, 0.002), True, NOT_SUPPORTED),  # the first model must not be worse
    ],
)
def test_equivalence_verdict(effect, ci, non_negative, verdict):
    assert equivalence_verdict(effect, *ci, 0.02, non_negative, "2.0 pp")[0] == verdict


def test_wilson_follows_the_confidence_asked_for():
    z90 = 1.6448536269514722  # the two-sided 90 % normal quantile
    assert wilson_interval(45, 100, 0.90) == pytest.approx(wilson_by_hand(45, 100, z90), abs=1e-9)


def test_paired_accuracy_reports_both_accuracies_and_its_bootstrap_seed():
    rng = np.random.default_rng(7)
    a, b = rng.random(300) < 0.7, rng.random(300) < 0.6
    compared = paired_accuracy(a, b, 0.95, 300, seed=5)
    assert (compared["n_images"], compared["accuracy_a"], compared["accuracy_b"]) == (300, a.mean(), b.mean())
    assert (compared["ci_low"], compared["ci_high"]) == paired_bootstrap_interval(a, b, 0.95, 300, seed=5)
    assert compared["p_value"] == compared["p_mcnemar"] == mcnemar_exact(np.sum(a & ~b), np.sum(b & ~a))


def test_paired_accuracy_takes_answers_as_ones_and_zeros():
    """Correctness read back from a CSV or averaged arrives as 0.0/1.0, not as booleans."""
    a, b = np.array([1.0, 1.0, 0.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    compared = paired_accuracy(a, b, 0.95, 100, seed=0)
    assert (compared["a_only_correct"], compared["b_only_correct"]) == (2, 1)
    assert compared["difference"] == pytest.approx(0.2)


def test_mcnemar_matches_the_binomial_tail_by_hand():
    # 7 against 3 of 10 discordant images: 2 × P(X ≤ 3), X ~ Binomial(10, 1/2) = 2 × 176 / 1024
    assert mcnemar_exact(7, 3) == pytest.approx(2 * (1 + 10 + 45 + 120) / 1024)


def test_t_across_seeds_tests_a_tiny_but_real_spread():
    """Only equality up to rounding (1e-12) means "no spread": a spread of 1e-10, or of a millionth on
    a difference of one half, is tested like any other."""
    for differences in ([0.1, 0.1 + 1e-10, 0.1 + 2e-10], [0.5, 0.500001, 0.5000005]):
        expected = stats.ttest_1samp(differences, 0.0)
        mean, low, high, p = t_across_seeds(differences, 0.95)
        assert p == pytest.approx(expected.pvalue) and low < mean < high


def test_holm_takes_whole_numbers():
    assert holm([1, 0]).tolist() == [1.0, 0.0]


def test_format_p_at_its_thresholds():
    assert [format_p(p) for p in (1e-6, 1e-3, 0.0)] == ["1.0e-06", "0.001", "< 1e-6"]


@pytest.mark.parametrize(
    ("ci", "p_holm", "verdict", "reason"),
    [
        ((0.01, 0.05), 0.001, SUPPORTED, "Holm p = 0.001, below α = 0.05, and the interval lies above 0"),
        ((0.01, 0.05), 1e-9, SUPPORTED, "Holm p < 1e-6, below α = 0.05, and the interval lies above 0"),
        (
            (-0.05, -0.01),
            0.001,
            CONTRADICTED,
            "Holm p = 0.001, below α = 0.05, and the interval lies below 0: the other model is better",
        ),
        ((0.01, 0.05), 0.05, NOT_SUPPORTED, "Holm p = 0.050, not below α = 0.05"),  # p must be below α
        ((0.0, 0.05), 0.001, NOT_SUPPORTED, "the interval includes 0"),  # touching 0 is not above it
        ((-0.05, 0.0), 0.001, NOT_SUPPORTED, "the interval includes 0"),
    ],
)
def test_superiority_verdict_reasons_and_boundaries(ci, p_holm, verdict, reason):
    assert superiority_verdict(*ci, p_holm, 0.05) == (verdict, reason)


@pytest.mark.parametrize(
    ("effect", "ci", "non_negative", "verdict", "reason"),
    [
        # an interval reaching exactly to the margin is inside it
        (0.0, (-0.02, 0.02), True, SUPPORTED, "the interval lies inside ±2.0 pp and the effect is ≥ 0"),
        (0.0, (-0.02, 0.02), False, SUPPORTED, "the interval lies inside ±2.0 pp"),
        (
            0.025,
            (0.02, 0.03),
            True,
            NOT_SUPPORTED,
            "the interval crosses the margin ±2.0 pp: too uncertain to call the difference small",
        ),  # fmt: skip
        (
            -0.025,
            (-0.03, -0.02),
            False,
            NOT_SUPPORTED,
            "the interval crosses the margin ±2.0 pp: too uncertain to call the difference small",
        ),  # fmt: skip
        (0.05, (0.03, 0.07), True, CONTRADICTED, "the interval lies entirely outside ±2.0 pp"),
        (-0.005, (-0.01, -0.001), True, CONTRADICTED, "the interval lies below 0: the first model is worse"),
        # an interval ending at 0 is not below it
        (
            -0.005,
            (-0.01, 0.0),
            True,
            NOT_SUPPORTED,
            "the interval lies inside ±2.0 pp but the first model is worse (effect < 0)",
        ),  # fmt: skip
    ],
)
def test_equivalence_verdict_reasons_and_boundaries(effect, ci, non_negative, verdict, reason):
    assert equivalence_verdict(effect, *ci, 0.02, non_negative, "2.0 pp") == (verdict, reason)


def test_a_holm_p_at_alpha_contradicts_nothing():
    assert superiority_verdict(-0.05, -0.01, 0.05, 0.05) == (
        NOT_SUPPORTED,
        "Holm p = 0.050, not below α = 0.05",
    )


def test_bootstrap_is_the_percentile_interval_of_resampled_mean_differences():
    """A hand bootstrap as reference: resample images (both models' answers together), take the mean
    difference, read its percentiles. Six images only A gets right, one only B: few enough that the
    interval sits on the lattice of 1/200 steps, where a bias-corrected interval would land elsewhere."""
    a, b = np.zeros(200, bool), np.zeros(200, bool)
    a[:100] = b[:100] = True
    a[100:106], b[106] = True, True
    differences = a.astype(float) - b.astype(float)
    resampled = differences[np.random.default_rng(0).integers(0, 200, (20000, 200))].mean(axis=1)
    for confidence in (0.95, 0.90):
        tail = 50 * (1 - confidence)
        by_hand = np.percentile(resampled, [tail, 100 - tail])
        assert paired_bootstrap_interval(a, b, confidence, 4000, seed=1) == pytest.approx(by_hand, abs=1e-9)
