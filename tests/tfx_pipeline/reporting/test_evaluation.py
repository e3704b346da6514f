"""How estimates read in the summary and the evaluation report."""

from tfx_pipeline.components.gated_evaluator.judge import Estimate
from tfx_pipeline.reporting.evaluation import CHANGE_RANGE, RATE_RANGE, format_estimate


def test_an_estimate_reads_value_then_interval():
    assert format_estimate(Estimate(0.91234, 0.9, 0.92)) == "0.9123 [0.9000, 0.9200]"
    assert format_estimate(Estimate(-0.002, -0.01, 0.006), signed=True) == (
        "-0.0020 [-0.0100, +0.0060]"
    )
    assert format_estimate(Estimate(0.9)) == "0.9000"
    assert format_estimate(Estimate(614.0, 600.0, 620.0)) == "614"  # counts without interval
    assert format_estimate(None) == "-"


def test_intervals_are_shown_within_what_the_metric_can_be():
    # A jackknife t interval on a one-class slice can reach past [0, 1]; a rate cannot.
    one_class = Estimate(0.9507, -0.9871, 2.7934)
    assert format_estimate(one_class, within=RATE_RANGE) == "0.9507 [0.0000, 1.0000]"
    assert format_estimate(one_class) == "0.9507 [-0.9871, 2.7934]"
    change = Estimate(0.5, -0.2, 1.4)
    assert format_estimate(change, signed=True, within=CHANGE_RANGE) == (
        "+0.5000 [-0.2000, +1.0000]"
    )
