"""The pipeline: one definition, the TFX extensions it uses, and the tools around its runs.

Assembly     config.py (PipelineConfig, the one table of defaults), pipeline.py (create_pipeline,
             four named stages), cloud.py (Dataflow and Vertex settings)
Extensions   components/ (custom components and executors), resolvers/ (resolver strategies),
             metrics/ (TFMA metrics)
Reading      metadata.py (every MLMD query), reporting/ (console, run summary, evaluation report)
Running      runners/ (local, Vertex, Airflow: flags -> config -> run), operations/ (history,
             monitor, watch); monitor.py and history.py are the `python -m` commands;
             notifications/ (run, rollback and monitor events to a webhook and a JSONL file)
Foundations  problems.py (reporting bad input), layout.py (where files live), node_ids.py
             (component ids), inputs.py (reading the files a user points at)
"""
