"""GatedEvaluator: TFX's Evaluator whose blessing judges metrics with their confidence intervals.

rules.py      the blessing rules (floors, no-regression, per-slice gates, slice gaps); pure Python
judge.py      applies the rules to metric values and their intervals; TFX-free
results.py    reads TFMA's metrics (with intervals) for the judge, writes its validation result
executor.py   TFX's Evaluator executor, then the judge, then the blessing as TFX writes it
component.py  the TFX component: the Evaluator's spec plus one JSON property, the rules
"""
