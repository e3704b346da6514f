"""The blessing judge on hand-made metric values: what noise may not fail, and what must fail."""

import pytest

from tfx_pipeline.components.gated_evaluator import judge
from tfx_pipeline.components.gated_evaluator.judge import Estimate, SliceMetrics
from tfx_pipeline.components.gated_evaluator.rules import BlessingRules, SliceGap
from tfx_pipeline.problems import ConfigProblems

RULES = BlessingRules(
    min_auc=0.9,
    max_auc_drop=0.01,
    slice_features=("payment_type",),
    min_slice_examples=200,
    min_slice_class_examples=20,
    min_slice_auc=0.5,
    max_slice_auc_drop=0.05,
)


def overall(change: Estimate | None = None, auc: float = 0.93) -> SliceMetrics:
    return SliceMetrics(
        "overall", 3000, 0.3, Estimate(auc, auc - 0.01, auc + 0.01), auc_change=change
    )


def card(
    auc: Estimate, count: int = 900, change: Estimate | None = None, mean_label: float = 0.6
) -> SliceMetrics:
    return SliceMetrics("payment_type=Credit Card", count, mean_label, auc, auc_change=change)


def verdicts(judgement: judge.Judgement) -> dict[tuple[str, str], str]:
    return {(c.slice, c.rule): c.verdict for c in judgement.checks}


def test_an_insignificant_drop_blesses_a_significant_one_does_not():
    # A point drop of 0.03, three times the limit, but the interval reaches above -0.01: noise.
    noisy = judge.judge(
        RULES, {"overall": overall(Estimate(-0.03, -0.07, 0.01))}, {}, has_baseline=True
    )
    assert noisy.blessed, [c.reason() for c in noisy.failures()]
    # The same point drop, measured precisely: the whole interval is below -0.01.
    real = judge.judge(
        RULES, {"overall": overall(Estimate(-0.03, -0.04, -0.02))}, {}, has_baseline=True
    )
    assert not real.blessed
    (failure,) = real.failures()
    assert failure.rule == "max_auc_drop"
    assert failure.reason() == (
        "overall: auc change vs baseline = -0.0300 [-0.0400, -0.0200] (n=3000) fails "
        "change >= -0.01 vs baseline: the whole interval is below -0.01"
    )


def test_the_overall_floor_judges_the_point_estimate():
    judgement = judge.judge(RULES, {"overall": overall(auc=0.89)}, {}, has_baseline=False)
    (failure,) = judgement.failures()
    # The interval [0.88, 0.90] reaches the floor, but the floor is on the point estimate.
    assert failure.reason() == "overall: auc = 0.8900 [0.8800, 0.9000] (n=3000) fails >= 0.9"


def test_a_reason_shows_the_interval_within_what_the_metric_can_be():
    # TFMA's jackknife t interval of a small slice's AUC near 0 reached -0.0001: judged as
    # computed, shown within [0, 1].
    judgement = judge.judge(
        RULES,
        {"overall": overall(), "payment_type=Credit Card": card(Estimate(0.0368, -0.0001, 0.0739))},
        {},
        has_baseline=False,
    )
    (failure,) = judgement.failures()
    assert failure.value.low == -0.0001
    assert failure.reason().startswith(
        "payment_type=Credit Card: auc = 0.0368 [0.0000, 0.0739] (n=900) fails >= 0.5"
    )


def test_without_a_baseline_only_the_floors_apply():
    slices = {"overall": overall(), "payment_type=Credit Card": card(Estimate(0.7, 0.65, 0.75))}
    judgement = judge.judge(RULES, slices, {}, has_baseline=False)
    assert verdicts(judgement) == {
        ("overall", "min_auc"): "pass",
        ("payment_type=Credit Card", "min_slice_auc"): "pass",
    }


def test_a_slice_fails_only_when_its_whole_interval_is_below_the_floor():
    below = card(Estimate(0.40, 0.35, 0.45))
    straddling = card(Estimate(0.45, 0.38, 0.52))
    for slice_metrics, verdict in ((below, "FAIL"), (straddling, "pass")):
        judgement = judge.judge(
            RULES, {"overall": overall(), slice_metrics.name: slice_metrics}, {}, False
        )
        assert verdicts(judgement)[("payment_type=Credit Card", "min_slice_auc")] == verdict
    failing = judge.judge(RULES, {"overall": overall(), below.name: below}, {}, False)
    assert [c.reason() for c in failing.failures()] == [
        "payment_type=Credit Card: auc = 0.4000 [0.3500, 0.4500] (n=900) fails >= 0.5: "
        "the whole interval is below 0.5"
    ]


def test_a_slice_below_the_floor_with_too_few_examples_is_reported_not_gated():
    small = card(Estimate(0.2, 0.1, 0.3), count=120)
    judgement = judge.judge(RULES, {"overall": overall(), small.name: small}, {}, False)
    assert judgement.blessed
    (check,) = judgement.for_slice(small.name)
    assert check.verdict == judge.NOT_JUDGED
    assert check.note == "too small to judge: n=120 (< 200)"


def test_a_one_class_slice_is_reported_never_gated():
    # Cash tips are not recorded: no positives, TFMA's AUC reads 0 with a zero-width interval.
    cash = SliceMetrics("payment_type=Cash", 1500, 0.0, Estimate(0.0, 0.0, 0.0))
    judgement = judge.judge(RULES, {"overall": overall(), cash.name: cash}, {}, False)
    assert judgement.blessed
    (check,) = judgement.for_slice(cash.name)
    assert (check.verdict, check.note) == (judge.NOT_JUDGED, "one class only: AUC undefined")


def test_a_nearly_one_class_slice_is_reported_never_gated():
    # The bundled 15k CSV: 2 recorded cash tips in 2460 trips. AUC 0.48 with a narrow jackknife
    # interval, below the 0.5 floor, yet it measures two examples, not the model.
    cash = SliceMetrics("payment_type=Cash", 2460, 2 / 2460, Estimate(0.4756, 0.4707, 0.4805))
    judgement = judge.judge(RULES, {"overall": overall(), cash.name: cash}, {}, False)
    assert judgement.blessed
    (check,) = judgement.for_slice(cash.name)
    assert check.note == "too few of one class to judge: 2 positives (< 20)"
    few_negatives = SliceMetrics("payment_type=Card", 400, 390 / 400, Estimate(0.3, 0.2, 0.4))
    (check,) = judge.judge(RULES, {few_negatives.name: few_negatives}, {}, False).for_slice(
        few_negatives.name
    )
    assert check.note == "too few of one class to judge: 10 negatives (< 20)"


def test_a_slice_drop_must_be_significant_to_fail():
    slices = {
        "overall": overall(Estimate(0.0, -0.005, 0.005)),
        "payment_type=Credit Card": card(
            Estimate(0.7, 0.65, 0.75), change=Estimate(-0.08, -0.12, -0.06)
        ),
        "payment_type=Cash": SliceMetrics(
            "payment_type=Cash",
            600,
            0.1,
            Estimate(0.7, 0.6, 0.8),
            auc_change=Estimate(-0.08, -0.2, 0.04),
        ),
    }
    judgement = judge.judge(RULES, slices, {}, has_baseline=True)
    assert verdicts(judgement) == {
        ("overall", "min_auc"): "pass",
        ("overall", "max_auc_drop"): "pass",
        ("payment_type=Cash", "min_slice_auc"): "pass",
        ("payment_type=Cash", "max_slice_auc_drop"): "pass",
        ("payment_type=Credit Card", "min_slice_auc"): "pass",
        ("payment_type=Credit Card", "max_slice_auc_drop"): "FAIL",
    }


def test_slices_of_ungated_features_are_not_judged():
    day = SliceMetrics("trip_start_day=3", 900, 0.3, Estimate(0.1, 0.05, 0.15))
    judgement = judge.judge(RULES, {"overall": overall(), day.name: day}, {}, False)
    assert judgement.blessed and not judgement.for_slice(day.name)


def test_a_value_without_an_interval_is_judged_on_its_point_estimate():
    no_interval = card(Estimate(0.4))
    judgement = judge.judge(RULES, {"overall": overall(), no_interval.name: no_interval}, {}, False)
    (failure,) = judgement.failures()
    assert failure.note == "no interval: judged on the point estimate"


def test_a_cross_slice_gap_fails_only_when_significantly_beyond_the_limit():
    rules = BlessingRules(
        **{**RULES.__dict__, "slice_gaps": (SliceGap("payment_type", "Credit Card", "Cash", 0.1),)}
    )
    slices = {
        "overall": overall(),
        "payment_type=Credit Card": card(Estimate(0.8, 0.75, 0.85)),
        "payment_type=Cash": SliceMetrics("payment_type=Cash", 600, 0.1, Estimate(0.6, 0.5, 0.7)),
    }
    key = ("payment_type=Credit Card", "payment_type=Cash")

    def gap_verdict(gap: Estimate) -> judge.Check:
        (check,) = [
            c
            for c in judge.judge(rules, slices, {key: gap}, False).checks
            if c.rule == "slice_gaps"
        ]
        return check

    assert gap_verdict(Estimate(0.2, 0.05, 0.35)).verdict == "pass"  # within noise of 0.1
    assert gap_verdict(Estimate(0.2, 0.12, 0.28)).verdict == "FAIL"
    assert gap_verdict(Estimate(-0.2, -0.28, -0.12)).verdict == "FAIL"  # either direction
    failed = gap_verdict(Estimate(0.2, 0.12, 0.28))
    assert failed.reason() == (
        "payment_type=Credit Card vs Cash: auc gap = +0.2000 [+0.1200, +0.2800] fails "
        "|gap| <= 0.1: the whole interval is above 0.1"
    )
    # A one-class side makes the gap meaningless: reported, not judged.
    slices["payment_type=Cash"] = SliceMetrics("payment_type=Cash", 600, 0.0, Estimate(0.0))
    unjudged = gap_verdict(Estimate(0.8, 0.75, 0.85))
    assert unjudged.verdict == judge.NOT_JUDGED
    assert unjudged.note == "payment_type=Cash: one class only: AUC undefined"


def test_every_failure_is_reported_not_just_the_first():
    slices = {
        "overall": overall(Estimate(-0.1, -0.12, -0.08), auc=0.8),
        "payment_type=Credit Card": card(Estimate(0.3, 0.2, 0.4)),
    }
    judgement = judge.judge(RULES, slices, {}, has_baseline=True)
    # The slice's missing change against the baseline fails too: nothing unmeasured passes.
    assert [c.rule for c in judgement.failures()] == [
        "min_auc",
        "max_auc_drop",
        "min_slice_auc",
        "max_slice_auc_drop",
    ]


def test_a_judgement_survives_its_json():
    slices = {
        "overall": overall(Estimate(-0.03, -0.04, -0.02)),
        "payment_type=Cash": card(Estimate(0.4)),
    }
    judgement = judge.judge(RULES, slices, {}, has_baseline=True)
    again = judge.Judgement.from_json(judgement.to_json())
    assert again == judgement and not again.blessed


def test_rules_survive_their_json_and_refuse_bad_values():
    rules = BlessingRules(
        **{**RULES.__dict__, "slice_gaps": (SliceGap("payment_type", "Credit Card", "Cash", 0.1),)}
    )
    assert BlessingRules.from_json(rules.to_json()) == rules
    bad = BlessingRules(**{**RULES.__dict__, "min_slice_auc": 1.5, "min_slice_examples": 0})
    with pytest.raises(ConfigProblems) as error:
        BlessingRules.from_json(bad.to_json())
    assert len(error.value.problems) == 2


@pytest.mark.parametrize(
    "text",
    ["payment_type:Credit Card:0.1", "payment_type:a:b:c:0.1", "payment_type:a:b:x", ":a:b:0.1"],
)
def test_a_malformed_slice_gap_names_the_expected_form(text):
    with pytest.raises(ValueError, match="FEATURE:VALUE:OTHER_VALUE:MAX_GAP"):
        SliceGap.parse(text)


def test_a_slice_gap_is_parsed_from_its_flag_form():
    assert SliceGap.parse("payment_type:Credit Card:Cash:0.1") == SliceGap(
        "payment_type", "Credit Card", "Cash", 0.1
    )
