"""The blessing rules: what the GatedEvaluator's judge checks, as settings that travel as JSON.

Pure Python (no TensorFlow, no TFX): PipelineConfig validates them before anything runs, and
the executor reads them back from its `blessing_rules` exec property.
"""

import dataclasses
import json

from tfx_pipeline.problems import raise_if_any


@dataclasses.dataclass(frozen=True)
class SliceGap:
    """The AUC gap between two slices of one feature, AUC(first) - AUC(second), may not exceed
    `max_gap` in either direction."""

    feature: str
    first: str
    second: str
    max_gap: float

    @classmethod
    def parse(cls, text: str) -> "SliceGap":
        """'payment_type:Credit Card:Cash:0.1' -> SliceGap; raises ValueError naming the form."""
        feature, _, rest = text.partition(":")
        values, _, limit = rest.rpartition(":")
        first, separator, second = values.partition(":")
        try:
            max_gap = float(limit)
        except ValueError:
            max_gap = None
        if not (feature and first and second and separator) or ":" in second or max_gap is None:
            raise ValueError(
                f"expected FEATURE:VALUE:OTHER_VALUE:MAX_GAP such as "
                f"'payment_type:Credit Card:Cash:0.1', got {text!r}"
            )
        return cls(feature=feature, first=first, second=second, max_gap=max_gap)

    def text(self) -> str:
        return f"{self.feature}:{self.first}:{self.second}:{self.max_gap:g}"

    def slice_names(self) -> tuple[str, str]:
        return f"{self.feature}={self.first}", f"{self.feature}={self.second}"


@dataclasses.dataclass(frozen=True)
class BlessingRules:
    """Every threshold the judge applies (defaults live in PipelineConfig, not here).

    Attributes:
      min_auc: floor on the overall slice's AUC point estimate.
      max_auc_drop: the overall AUC may not drop more than this below the baseline's, judged on
        the interval of the difference: only a drop whose whole interval is below -max_auc_drop
        fails.
      slice_features: every slice of these features is gated (when big enough).
      min_slice_examples: smaller slices are reported, never gated.
      min_slice_class_examples: so are slices with fewer positives or fewer negatives than this:
        AUC (and its jackknife interval) says little about a handful of one class.
      min_slice_auc: a slice fails when its whole AUC interval is below this; 0 turns it off.
      max_slice_auc_drop: a slice fails when the whole interval of its AUC change against the
        baseline is below minus this; 1 turns it off.
      slice_gaps: AUC gaps between two slices that fail when significantly above their limit.
    """

    min_auc: float
    max_auc_drop: float
    slice_features: tuple[str, ...]
    min_slice_examples: int
    min_slice_class_examples: int
    min_slice_auc: float
    max_slice_auc_drop: float
    slice_gaps: tuple[SliceGap, ...] = ()

    def problems(self) -> list[str]:
        """Every bad value, each named; empty when the rules are usable."""
        problems = []
        for name in ("min_auc", "max_auc_drop", "min_slice_auc", "max_slice_auc_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be within [0, 1], got {value}")
        for name in ("min_slice_examples", "min_slice_class_examples"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for feature in self.slice_features:
            if not feature or "=" in feature or "," in feature:
                problems.append(f"slice feature {feature!r} is not a feature name")
        for gap in self.slice_gaps:
            if not 0.0 <= gap.max_gap <= 1.0:
                problems.append(f"slice gap {gap.text()}: MAX_GAP must be within [0, 1]")
            if gap.first == gap.second:
                problems.append(f"slice gap {gap.text()}: compares a slice with itself")
        return problems

    def gated_features(self) -> tuple[str, ...]:
        """Features whose slices the judge reads: gated ones and those of the slice gaps."""
        features = list(self.slice_features)
        features += [gap.feature for gap in self.slice_gaps if gap.feature not in features]
        return tuple(features)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BlessingRules":
        """The rules `to_json` wrote; raises ConfigProblems naming every problem."""
        try:
            data = json.loads(text)
            data["slice_features"] = tuple(data["slice_features"])
            data["slice_gaps"] = tuple(SliceGap(**gap) for gap in data.get("slice_gaps", ()))
            rules = cls(**data)
        except (ValueError, TypeError, KeyError) as error:
            raise_if_any([f"not BlessingRules JSON ({error}): {text!r}"], "blessing rules")
        raise_if_any(rules.problems(), "blessing rules")
        return rules
