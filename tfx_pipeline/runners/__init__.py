"""How each orchestrator gets the one pipeline: flags or settings -> PipelineConfig -> a run.

settings.py    what every runner shares: flag types and groups, flag-to-config mapping, input checks
exit_codes.py  the exit status of a pipeline run
local.py       local_runner.py: LocalDagRunner, console progress and the run summary
vertex.py      vertex_runner.py: KubeflowV2DagRunner compile, PipelineJob submit or schedule
airflow.py     airflow_dags/: TAXI_* environment variables and the DAG's arguments
"""
