"""The two verdict rules, on cases computed by hand."""

from __future__ import annotations

import math

from u2fusion_tf.verdicts import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_RESOLVED,
    compare_with_paper,
    null_claim_verdict,
    seed_verdict,
    within_paper_std,
)


def test_compare_with_paper_is_welchs_z():
    # ours: mean 0.6, population sd 0.1 over 5 pairs -> sample sd 0.1 * sqrt(5/4) = 0.111803;
    # paper: 0.537 ± 0.11 over 20 pairs. SE = sqrt(0.11²/20 + 0.111803²/5) = sqrt(0.000605 +
    # 0.0025) = 0.055723; z = 0.063 / 0.055723 = 1.1306.
    verdict = compare_with_paper((0.6, 0.1, 5), (0.537, 0.11, 20))
    assert math.isclose(verdict.z, 1.1306, abs_tol=1e-4) and verdict.consistent
    assert str(verdict) == "consistent (z = +1.13)"
    # one pair: only the paper's standard error, 0.11 / sqrt(20) = 0.024597; z = -0.1 / it
    far = compare_with_paper((0.437, 0.0, 1), (0.537, 0.11, 20))
    assert math.isclose(far.z, -4.0656, abs_tol=1e-4) and not far.consistent
    assert str(far) == "differs (z = -4.07)"
    # |z| = 2 exactly is consistent
    assert compare_with_paper((0.537 + 2 * 0.11 / math.sqrt(20), 0.0, 1), (0.537, 0.11, 20))
    assert compare_with_paper((1.0, 0.0, 1), (1.0, 0.0, 1)).z == 0.0


def test_within_paper_std_is_the_lenient_reading():
    assert within_paper_std(0.6, (0.537, 0.11)) == "yes (+0.57 sd)"
    assert within_paper_std(0.3, (0.537, 0.11)) == "no (-2.15 sd)"
    assert within_paper_std(1.0, (1.1, 0.1)).startswith("yes")


def test_seed_verdict_needs_one_sign_and_two_sds():
    # mean 1, sample sd 0.1: 1 > 0.2 and every seed positive
    assert seed_verdict([1.0, 1.1, 0.9]).verdict == HOLDS
    assert seed_verdict([-1.0, -1.1, -0.9]).verdict == DOES_NOT_HOLD
    # one seed against the others
    assert seed_verdict([1.0, -0.2, 3.0]).verdict == NOT_RESOLVED
    # same sign but mean 2 <= 2 sd (sd of 1, 2, 3 is 1)
    effect = seed_verdict([1.0, 2.0, 3.0])
    assert effect.verdict == NOT_RESOLVED and effect.mean == 2.0 and effect.sd == 1.0
    # one seed decides nothing
    assert seed_verdict([5.0]).verdict == NOT_RESOLVED
    assert str(seed_verdict([1.0, 1.1, 0.9])) == "holds (+1 ± 0.1 over 3 seeds)"


def test_a_claim_of_no_effect_fails_when_the_effect_counts():
    assert null_claim_verdict([1.0, 1.1, 0.9]).verdict == DOES_NOT_HOLD
    assert null_claim_verdict([-1.0, -1.1, -0.9]).verdict == DOES_NOT_HOLD
    assert null_claim_verdict([0.1, -0.1, 0.05]).verdict == NOT_RESOLVED
