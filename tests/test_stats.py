"""The statistics claims are made with (pblf.results.stats), against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from pblf.results.stats import equivalence, method_level


def test_tost_by_hand():
    """Differences 0.1, 0.3, -0.1, 0.5: mean 0.2, sd sqrt(0.2 / 3) = 0.2582, se 0.1291; t(0.95, 3) = 2.3534, so the
    90 % interval is 0.2 -+ 0.3038 = [-0.1038, 0.5038]. Against a margin of 0.5 its upper end is outside: the test
    against mean >= 0.5 has t = -0.3 / 0.1291 = -2.3238 and p = 0.0514, not below 0.05: no equivalence shown.
    Against 0.6: t = -3.0984, p = 0.0267, and t = 0.8 / 0.1291 = 6.1968 on the other side, p = 0.0042: shown."""
    diffs = [0.1, 0.3, -0.1, 0.5]
    tight = equivalence(diffs, 0.5)
    assert tight["mean"] == pytest.approx(0.2) and tight["ci_tost"] == pytest.approx([-0.1038, 0.5038], abs=1e-4)
    assert tight["p_upper"] == pytest.approx(0.0514, abs=1e-4) and not tight["equivalent"]
    wide = equivalence(diffs, 0.6)
    assert wide["p_upper"] == pytest.approx(0.0267, abs=1e-4) and wide["p_lower"] == pytest.approx(0.0042, abs=1e-4)
    assert wide["p"] == wide["p_upper"] and wide["equivalent"]
    # t(0.975, 3) = 3.1824: the 95 % interval 0.2 -+ 0.4109
    assert wide["ci95"] == pytest.approx([-0.2109, 0.6109], abs=1e-4)


def test_tost_is_the_interval_inside_the_margin():
    """Equivalence at alpha is exactly: the 1 - 2 alpha interval lies inside (-margin, margin)."""
    diffs = [0.3, -0.2, 0.45, 0.1, 0.0, -0.35, 0.2]
    for margin in (0.2, 0.3, 0.4, 0.5, 0.8):
        result = equivalence(diffs, margin)
        low, high = result["ci_tost"]
        assert result["equivalent"] == (-margin < low and high < margin)


def test_equal_differences_and_bad_arguments():
    assert equivalence([0.1, 0.1, 0.1], 0.5)["equivalent"] and equivalence([0.1, 0.1], 0.5)["ci95"] is None
    assert not equivalence([0.7, 0.7], 0.5)["equivalent"]
    with pytest.raises(ValueError, match="margin -1 must be positive"):
        equivalence([0.1, 0.2], -1)
    with pytest.raises(ValueError, match="at least 2 differences"):
        equivalence([0.1], 0.5)


#: Three searches of one method, each choice retrained with seeds 1 and 2, and Standard with the same seeds.
SEARCHES = {0: {1: 91.0, 2: 93.0}, 1: {1: 90.0, 2: 90.0}, 2: {1: 92.0, 2: 94.0}}
STANDARD = {1: 90.0, 2: 91.0}


def test_method_level_by_hand():
    """Each search's mean paired difference: (1 + 2) / 2 = 1.5, (0 - 1) / 2 = -0.5, (2 + 3) / 2 = 2.5; their mean is
    7/6, their variance ((1/3)^2 + (5/3)^2 + (4/3)^2) / 2 = 7/3, so se^2 = 7/9 and t^2 = (49/36) / (7/9) = 7/4 on
    2 degrees of freedom. With 2 df the t distribution is closed-form: the two-sided p is 1 - t / sqrt(t^2 + 2) =
    1 - sqrt(7/15), and the 0.975 quantile is a sqrt(2 / (1 - a^2)) with a = 0.95."""
    result = method_level(SEARCHES, STANDARD)
    assert result["search_means"] == {0: 1.5, 1: -0.5, 2: 2.5} and result["n"] == 3
    assert result["diff"] == pytest.approx(7 / 6)
    assert result["p"] == pytest.approx(1 - math.sqrt(7 / 15))
    half = 0.95 * math.sqrt(2 / (1 - 0.95**2)) * math.sqrt(7 / 9)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((7 / 6 - half, 7 / 6 + half))


def test_method_level_needs_two_searches_that_differ():
    one = method_level({0: SEARCHES[0]}, STANDARD)
    assert one["diff"] == 1.5 and one["n"] == 1 and one["p"] is None and one["ci_low"] is None
    same = method_level({0: SEARCHES[0], 1: {1: 91.0, 2: 93.0}}, STANDARD)
    assert same["all_equal"] and same["p"] is None and same["diff"] == 1.5
    unpaired = method_level({0: {7: 95.0}}, STANDARD)  # no seed in common with Standard: nothing to compare
    assert unpaired["n"] == 0 and unpaired["diff"] is None
