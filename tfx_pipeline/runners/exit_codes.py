"""Exit status of a pipeline run, the same for every command that runs the pipeline."""

from tfx_pipeline.problems import EXIT_USAGE

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_BLESSED = 3

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_NOT_BLESSED", "EPILOG"]

EPILOG = f"""\
exit status:
  {EXIT_OK}  the run finished; a blessed model is served (newly pushed, or unchanged)
  {EXIT_FAILED}  a component failed (the console names it; the log file has the traceback)
  {EXIT_USAGE}  bad flags or input paths; nothing was run
  {EXIT_NOT_BLESSED}  the run finished but the model was not blessed (by the Evaluator or the
     InfraValidator), so nothing was pushed
"""
