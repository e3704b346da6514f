"""Custom TFX components and executors, one folder each: the component, its executor, the TFX-free logic.

arrow_csv_example_gen/  CsvExampleGen's examples from Arrow and C++, shuffled in bounded memory
data_gate/              stops the run when ExampleValidator's anomalies break the data policy
gated_evaluator/        TFX's Evaluator blessing on TFMA's jackknife intervals, overall and per slice
infra_validator/        TFX's InfraValidator serving the candidate in a real model server process
atomic_pusher/          TFX's Pusher: whole versions only, never a duplicate, warm, with a model card

Package `__init__` modules import nothing, so the TFX-free parts load without TFX.
"""
