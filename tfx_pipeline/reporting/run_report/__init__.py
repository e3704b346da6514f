"""The run report: one self-contained HTML page per run, built from MLMD and the run's artifacts.

facts.py      what the sections read: the run's executions, its summary, where its files are
pipeline.py   1. the DAG as a picture: each component's state, duration, failure
data.py       2. rows per split; per feature this span, the previous span, the training data
training.py   3. the hyperparameter search, the chosen values, the training curves
evaluation.py 4. every metric on every slice against the baseline, thresholds, ROC, calibration
serving.py    5. what was pushed, or why nothing was; 6. lineage from span to pushed version
build.py      the page assembled and written to <output-dir>/reports/run-<time>.html
"""
