"""Custom TFMA metrics the Evaluator computes (named in the eval config by module path).

histogram_metrics.py  example count, accuracy/precision/recall, calibration, mean label from
                      AUC's calibration histogram: one per-example combiner instead of four
"""
