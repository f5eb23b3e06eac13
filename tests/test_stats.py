"""The statistics claims are made with (pblf.results.stats), against values worked out by hand."""

from __future__ import annotations

import pytest

from pblf.results.stats import equivalence


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
