"""Operator tools that act on runs and served models after the fact.

history.py      every pushed version with its span, AUC and state on disk (python -m tfx_pipeline.history)
monitor.py      training/serving skew of the server's request log (python -m tfx_pipeline.monitor)
watch.py        the continuous-training loop behind `local_runner.py --watch`
output_lock.py  one pipeline run at a time per output directory
"""
