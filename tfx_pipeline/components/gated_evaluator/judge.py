"""The blessing judge: the rules applied to metric values and their confidence intervals.

TFX-free and TensorFlow-free: it takes plain numbers (read from TFMA by `results.py`) and says,
check by check, what passed, what failed and what could not be judged, so that noise alone does
not flip a blessing:

- overall floor: the overall AUC point estimate must reach `min_auc` (the one point rule);
- no regression: with a baseline, fails only when the whole interval of the AUC change
  (candidate - baseline) lies below -`max_auc_drop`;
- per slice of the gated features, with at least `min_slice_examples` examples and at least
  `min_slice_class_examples` of each class:
  fails when the whole AUC interval lies below `min_slice_auc`, or (with a baseline) the whole
  interval of its AUC change lies below -`max_slice_auc_drop`; smaller, one-class and
  nearly one-class slices are reported, never gated;
- slice gaps: fails when the interval of AUC(first) - AUC(second) lies wholly above the limit
  or wholly below minus the limit.

A value TFMA gave no interval for (it needs every one of its partitions non-empty) is judged on
its point estimate, as TFMA's own thresholds would.
"""

import dataclasses
import json
import math
from collections.abc import Mapping

from tfx_pipeline.components.gated_evaluator.rules import BlessingRules, SliceGap

OVERALL = "overall"
PASS = "pass"
FAIL = "FAIL"
NOT_JUDGED = "not judged"
CHANGE_RULES = ("max_auc_drop", "max_slice_auc_drop")
CHANGE = "auc change vs baseline"
GAP = "auc gap"


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A metric's point estimate and its 95% confidence interval (None when TFMA gave none)."""

    value: float
    low: float | None = None
    high: float | None = None

    def has_interval(self) -> bool:
        return (
            self.low is not None
            and self.high is not None
            and math.isfinite(self.low)
            and math.isfinite(self.high)
        )

    def upper(self) -> float:
        """The interval's upper end, or the point estimate when there is no interval."""
        return self.high if self.has_interval() else self.value

    def lower(self) -> float:
        return self.low if self.has_interval() else self.value

    def text(self, signed: bool = False, within: tuple[float, float] | None = None) -> str:
        """'0.9123 [0.9011, 0.9234]' (signed: '+0.0100 [-0.0030, +0.0230]').

        `within`: the metric's possible range, which the interval is shown cut to. TFMA's
        jackknife interval (estimate +- t * standard error) can pass it: AUC 0.0368
        [-0.0001, 0.0739] on a slice of 130 rows. Judging reads the interval as computed;
        cutting it changes no verdict of a bound inside the range.
        """
        form = "{:+.4f}" if signed else "{:.4f}"
        if not self.has_interval():
            return form.format(self.value)
        low, high = self.low, self.high
        if within is not None:
            low, high = (min(max(bound, within[0]), within[1]) for bound in (low, high))
        return f"{form.format(self.value)} [{form.format(low)}, {form.format(high)}]"


@dataclasses.dataclass(frozen=True)
class SliceMetrics:
    """What the judge reads about one slice (`name` as 'overall' or 'feature=value')."""

    name: str
    example_count: int
    mean_label: float | None = None
    auc: Estimate | None = None
    baseline_auc: Estimate | None = None
    auc_change: Estimate | None = None  # candidate - baseline, with its own interval

    def positives(self) -> int:
        """Examples labelled 1 (from the mean label; 0 when it is unknown)."""
        return round((self.mean_label or 0.0) * self.example_count)

    def one_class(self) -> bool:
        """Only positives or only negatives: AUC is undefined (TFMA reports 0)."""
        return self.mean_label is not None and self.mean_label in (0.0, 1.0)

    def feature(self) -> str | None:
        if self.name == OVERALL or "," in self.name:
            return None
        return self.name.partition("=")[0]


@dataclasses.dataclass(frozen=True)
class Check:
    """One rule applied to one slice (or pair of slices): the evidence and the verdict."""

    slice: str
    rule: str  # a BlessingRules field name
    metric: str  # "auc", "auc change vs baseline", "auc gap"
    bound: float  # the floor, minus the largest drop, or the largest gap
    verdict: str  # PASS, FAIL or NOT_JUDGED
    value: Estimate | None = None
    example_count: int | None = None
    note: str = ""

    @property
    def threshold(self) -> str:
        """The rule as people read it: '>= 0.9', 'change >= -0.01 vs baseline', '|gap| <= 0.1'."""
        if self.rule in CHANGE_RULES:
            return f"change >= {self.bound:g} vs baseline"
        if self.rule == "slice_gaps":
            return f"|gap| <= {self.bound:g}"
        return f">= {self.bound:g}"

    def reason(self) -> str:
        """One line for people: 'payment_type=Cash: auc = 0.61 [0.58, 0.64] (n=719) fails ...'."""
        share = self.metric == "auc"  # else a change or a gap: a difference of two AUCs
        value = (
            self.value.text(signed=not share, within=(0.0, 1.0) if share else (-1.0, 1.0))
            if self.value
            else "not computed"
        )
        size = f" (n={self.example_count})" if self.example_count is not None else ""
        note = f": {self.note}" if self.note else ""
        return f"{self.slice}: {self.metric} = {value}{size} fails {self.threshold}{note}"


@dataclasses.dataclass
class Judgement:
    """Every check of one evaluation; the model is blessed when none failed."""

    has_baseline: bool
    checks: list[Check] = dataclasses.field(default_factory=list)

    @property
    def blessed(self) -> bool:
        return not self.failures()

    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.verdict == FAIL]

    def for_slice(self, slice_name: str) -> list[Check]:
        return [check for check in self.checks if check.slice == slice_name]

    def to_json(self) -> str:
        return json.dumps(
            {"blessed": self.blessed, **dataclasses.asdict(self)}, indent=2, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> "Judgement":
        data = json.loads(text)
        checks = []
        for check in data["checks"]:
            value = check.pop("value")
            checks.append(Check(**check, value=Estimate(**value) if value else None))
        return cls(has_baseline=data["has_baseline"], checks=checks)


def judge(
    rules: BlessingRules,
    slices: Mapping[str, SliceMetrics],
    gaps: Mapping[tuple[str, str], Estimate],
    has_baseline: bool,
) -> Judgement:
    """Applies every rule; `gaps` maps (first, second) slice names to AUC(first) - AUC(second)."""
    judgement = Judgement(has_baseline=has_baseline)
    judgement.checks += overall_checks(rules, slices.get(OVERALL), has_baseline)
    for name in sorted(slices):
        if slices[name].feature() in rules.slice_features:
            judgement.checks += slice_checks(rules, slices[name], has_baseline)
    for gap in rules.slice_gaps:
        judgement.checks.append(gap_check(rules, gap, slices, gaps))
    return judgement


def overall_checks(
    rules: BlessingRules, overall: SliceMetrics | None, has_baseline: bool
) -> list[Check]:
    """The floor on the point estimate and, with a baseline, the significant-drop check."""
    if overall is None or overall.auc is None:
        return [Check(OVERALL, "min_auc", "auc", rules.min_auc, FAIL, note="AUC was not computed")]
    passed = overall.auc.value >= rules.min_auc
    checks = [
        Check(
            OVERALL,
            "min_auc",
            "auc",
            rules.min_auc,
            PASS if passed else FAIL,
            overall.auc,
            overall.example_count,
        )
    ]
    if has_baseline:
        checks.append(_change_check(overall, "max_auc_drop", rules.max_auc_drop))
    return checks


def slice_checks(rules: BlessingRules, metrics: SliceMetrics, has_baseline: bool) -> list[Check]:
    """The slice floor and (with a baseline) the slice drop check, where enabled."""
    wanted = []
    if rules.min_slice_auc > 0:
        wanted.append(("min_slice_auc", "auc", rules.min_slice_auc))
    if has_baseline and rules.max_slice_auc_drop < 1:
        wanted.append(("max_slice_auc_drop", CHANGE, -rules.max_slice_auc_drop))
    unjudged = _why_not_judged(rules, metrics)
    if unjudged:
        return [
            Check(
                metrics.name,
                rule,
                metric,
                bound,
                NOT_JUDGED,
                metrics.auc_change if metric == CHANGE else metrics.auc,
                metrics.example_count,
                unjudged,
            )
            for rule, metric, bound in wanted
        ]
    checks = []
    if rules.min_slice_auc > 0:
        checks.append(_floor_check(metrics, rules.min_slice_auc))
    if has_baseline and rules.max_slice_auc_drop < 1:
        checks.append(_change_check(metrics, "max_slice_auc_drop", rules.max_slice_auc_drop))
    return checks


def gap_check(
    rules: BlessingRules,
    gap: SliceGap,
    slices: Mapping[str, SliceMetrics],
    gaps: Mapping[tuple[str, str], Estimate],
) -> Check:
    """AUC(first) - AUC(second): fails when its whole interval is beyond +-max_gap."""
    first, second = gap.slice_names()
    name = f"{first} vs {gap.second}"

    def unjudged(note: str, value: Estimate | None = None) -> Check:
        return Check(name, "slice_gaps", GAP, gap.max_gap, NOT_JUDGED, value, note=note)

    for slice_name in (first, second):
        if slice_name not in slices:
            return unjudged(f"no {slice_name} slice in the evaluation")
        why = _why_not_judged(rules, slices[slice_name])
        if why:
            return unjudged(f"{slice_name}: {why}")
    value = gaps.get((first, second))
    if value is None:
        value = Estimate(slices[first].auc.value - slices[second].auc.value)
    note = ""
    if value.lower() > gap.max_gap:
        note = _significance_note(value, "above", gap.max_gap)
    elif value.upper() < -gap.max_gap:
        note = _significance_note(value, "below", -gap.max_gap)
    return Check(name, "slice_gaps", GAP, gap.max_gap, FAIL if note else PASS, value, note=note)


def _why_not_judged(rules: BlessingRules, metrics: SliceMetrics) -> str:
    if metrics.example_count < rules.min_slice_examples:
        return f"too small to judge: n={metrics.example_count} (< {rules.min_slice_examples})"
    if metrics.one_class() or metrics.auc is None:
        return "one class only: AUC undefined"
    positives = metrics.positives()
    fewest = min(positives, metrics.example_count - positives)
    if fewest < rules.min_slice_class_examples:
        kind = "positives" if positives == fewest else "negatives"
        return (
            f"too few of one class to judge: {fewest} {kind} (< {rules.min_slice_class_examples})"
        )
    return ""


def _floor_check(metrics: SliceMetrics, floor: float) -> Check:
    """A slice fails its floor only when its whole AUC interval is below it."""
    auc = metrics.auc
    assert auc is not None
    note = _significance_note(auc, "below", floor) if auc.upper() < floor else ""
    verdict = FAIL if note else PASS
    return Check(
        metrics.name, "min_slice_auc", "auc", floor, verdict, auc, metrics.example_count, note
    )


def _change_check(metrics: SliceMetrics, rule: str, max_drop: float) -> Check:
    """A drop fails only when the whole interval of the change is below -max_drop."""
    change = metrics.auc_change
    count = metrics.example_count
    if change is None:
        return Check(
            metrics.name, rule, CHANGE, -max_drop, FAIL, None, count, "no AUC change computed"
        )
    note = _significance_note(change, "below", -max_drop) if change.upper() < -max_drop else ""
    return Check(metrics.name, rule, CHANGE, -max_drop, FAIL if note else PASS, change, count, note)


def _significance_note(value: Estimate, side: str, bound: float) -> str:
    if value.has_interval():
        return f"the whole interval is {side} {bound:g}"
    return "no interval: judged on the point estimate"
