"""Atomic Pusher: TF Serving versions that appear complete or not at all, never pushed twice.

push.py       the push itself (stage, rename, refuse duplicates and rolled-back models); TFX-free
executor.py   the executor given to TFX's stock Pusher component (`custom_executor_spec`)
"""
