"""Custom TFMA metrics the Evaluator computes (named in the eval config by module path).

auc.py                TFMA's AUC, the same value computed from the histogram with numpy: TFMA's
                      own is the Evaluator's main cost with jackknife intervals
histogram_metrics.py  example count, accuracy/precision/recall, calibration, mean label from
                      AUC's calibration histogram: one per-example combiner instead of four
"""
