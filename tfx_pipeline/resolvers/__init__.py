"""Resolver strategies: how the pipeline picks earlier artifacts out of MLMD, and the two families.

latest_blessed_baseline.py   the Evaluator's baseline: the newest blessed model not the candidate
previous_span_statistics.py  the drift baseline: statistics of the newest span below this one
span_window.py               the rolling training window: the newest N spans that passed the gate
families.py                  lineage-aware (ours) or portable (TFX's stock strategies, which
                             Kubeflow Pipelines v2 / Vertex can compile): chosen once per pipeline
"""
