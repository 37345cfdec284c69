"""The claims table: paired differences by seed, Student-t intervals, the verdict rule."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from clipflow.reporting.claims import (
    check_claims,
    claims_table,
    replicate_seeds,
    t_interval,
    verdict,
    write_claims,
)

CLAIM = {
    "claim": "A beats B",
    "method": "a",
    "control": "b",
    "benchmark": "bench",
    "metric": "acc",
    "direction": "greater",
}


def results(values: dict[tuple[str, int], float]) -> pd.DataFrame:
    rows = [
        ("exp", run, seed, "final", "bench", "task", "acc", value)
        for (run, seed), value in values.items()
    ]
    columns = ["experiment", "run", "seed", "checkpoint", "benchmark", "task", "metric", "value"]
    return pd.DataFrame(rows, columns=columns).astype({"seed": "Int64"})


def test_t_interval_of_three_differences_by_hand() -> None:
    # mean 2, sample sd 1, t(0.975, 2) = 4.302652729749464: half-width 4.3027 / sqrt(3)
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729749464 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_t_interval_of_one_difference_has_no_bounds() -> None:
    mean, low, high = t_interval([0.5])
    assert mean == 0.5 and math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize(
    ("mean", "low", "high", "direction", "expected"),
    [
        (0.02, 0.01, 0.03, "greater", "reproduced"),
        (0.02, -0.01, 0.05, "greater", "inconclusive"),
        (0.02, math.nan, math.nan, "greater", "inconclusive"),  # one seed
        (-0.02, -0.05, 0.01, "greater", "not reproduced"),  # wrong side, interval reaches 0
        (-0.02, -0.03, -0.01, "greater", "not reproduced"),
        (0.0, -0.01, 0.01, "greater", "not reproduced"),  # no effect at all
        (-0.02, -0.03, -0.01, "less", "reproduced"),
        (-0.02, -0.03, 0.01, "less", "inconclusive"),
        (0.02, 0.01, 0.03, "less", "not reproduced"),
    ],
)
def test_verdict_rule(mean, low, high, direction, expected) -> None:
    assert verdict(mean, low, high, direction) == expected


def test_claims_pair_by_seed_and_skip_unpaired_seeds() -> None:
    # seed 2 has no control: left out; differences 0.1 and 0.3 for seeds 0 and 1
    table = claims_table(
        results({("a", 0): 0.6, ("a", 1): 0.9, ("a", 2): 0.1, ("b", 0): 0.5, ("b", 1): 0.6}),
        [CLAIM],
    )
    row = table.iloc[0]
    half = 12.706204736174707 * math.sqrt(0.02) / math.sqrt(2)  # sd of (0.1, 0.3) = sqrt(0.02)
    assert row["n"] == 2
    assert row["method_mean"] == pytest.approx(0.75)
    assert row["control_mean"] == pytest.approx(0.55)
    assert row["difference"] == pytest.approx(0.2)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.2 - half, 0.2 + half))
    assert row["verdict"] == "inconclusive"


def test_a_claim_without_results_is_inconclusive(tmp_path) -> None:
    table = claims_table(results({("a", 0): 0.6}), [CLAIM])
    assert table.iloc[0]["n"] == 0 and table.iloc[0]["verdict"] == "inconclusive"
    written = write_claims(table, tmp_path)
    assert [path.name for path in written] == ["claims.csv", "claims.md"]


def test_claims_md_shows_points_and_the_interval(tmp_path) -> None:
    values = {("a", 0): 0.60, ("a", 1): 0.70, ("a", 2): 0.80}
    values |= {("b", 0): 0.50, ("b", 1): 0.60, ("b", 2): 0.69}
    write_claims(claims_table(results(values), [CLAIM]), tmp_path)
    markdown = (tmp_path / "claims.md").read_text()
    # differences 0.10, 0.10, 0.11: mean 10.33 points, a narrow interval above 0
    assert "+10.33 [" in markdown and "reproduced" in markdown
    assert "a (70.00)" in markdown and "b (59.67)" in markdown


def test_seeds_are_a_list_or_a_count() -> None:
    assert replicate_seeds(None) == [None]
    assert replicate_seeds(3) == [0, 1, 2]
    assert replicate_seeds([4, 7]) == [4, 7]


def test_check_claims_names_the_bad_key() -> None:
    config = {"runs": {"a": {}, "b": {"enabled": False}}, "benchmarks": {"enabled": {"bench": {}}}}
    with pytest.raises(ValueError, match=r"claims\[0\]\.control: 'b' is not an enabled run"):
        check_claims({**config, "claims": [CLAIM]})
    with pytest.raises(ValueError, match=r"runs\.a\.seeds: only train\.seeds"):
        check_claims({**config, "runs": {"a": {"seeds": 2}}})
