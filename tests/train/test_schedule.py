import math

import pytest

from infomax.train.schedule import lr_factor, run_fraction


def test_constant_is_one_everywhere():
    assert [lr_factor("constant", p) for p in (0.0, 0.3, 1.0)] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_cosine_matches_the_formula(p):
    assert lr_factor("cosine", p) == pytest.approx(0.5 * (1 + math.cos(math.pi * p)), abs=1e-15)


def test_cosine_hand_checked_points():
    assert lr_factor("cosine", 0.0) == 1.0
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5, abs=1e-15)
    assert lr_factor("cosine", 1.0) == pytest.approx(0.0, abs=1e-15)
    assert lr_factor("cosine", 1 / 3) == pytest.approx(0.75, abs=1e-15)  # cos(π/3) = 1/2


def test_wsd_holds_then_decays_linearly_over_the_last_fifth():
    assert [lr_factor("wsd", p) for p in (0.0, 0.5, 0.79)] == [1.0, 1.0, 1.0]  # 1 − p > 0.2: the base rate
    assert lr_factor("wsd", 0.8) == pytest.approx(1.0, abs=1e-12)  # the tail starts
    assert lr_factor("wsd", 0.9) == pytest.approx(0.5, abs=1e-12)  # half way down the tail
    assert lr_factor("wsd", 0.95) == pytest.approx(0.25, abs=1e-12)
    assert lr_factor("wsd", 1.0) == 0.0
    tail = [lr_factor("wsd", 0.8 + i / 1000) for i in range(201)]
    assert all(a > b for a, b in zip(tail, tail[1:]))  # strictly down to 0 at the end


def test_run_fraction_takes_whichever_end_comes_first():
    assert run_fraction(25, 100, 0.0, None) == 0.25
    assert run_fraction(25, 100, 30.0, 60.0) == 0.5  # the clock is ahead
    assert run_fraction(75, 100, 30.0, 60.0) == 0.75  # the steps are ahead
    assert run_fraction(150, 100, 0.0, None) == 1.0  # clipped


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="constant, cosine, wsd"):
        lr_factor("linear", 0.5)
