"""Operator tools that act on runs and served models after the fact.

history.py      every pushed version with its span, AUC and state on disk (python -m tfx_pipeline.history)
runs.py         every run, one line each, and two runs compared (python -m tfx_pipeline.runs)
report.py       a past run's HTML report written again from MLMD (python -m tfx_pipeline.report)
explain.py      why a component ran or came from cache (python -m tfx_pipeline.explain)
monitor.py      training/serving skew of the server's request log (python -m tfx_pipeline.monitor)
watch.py        the continuous-training loop behind `local_runner.py --watch`
rollback_log.py the serving directory's rollbacks.jsonl followed by the watch loop, as notifications
output_lock.py  one pipeline run at a time per output directory
"""
