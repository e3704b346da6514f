"""Atomic Pusher: TF Serving versions that appear complete or not at all, never pushed twice, each with its model card.

component.py   TFX's Pusher spec plus the model card's inputs (evaluation, hyperparameters, ...)
executor.py    the executor: pushes through push.py, builds the card through model_card.py
push.py        the push itself (stage, rename, refuse duplicates and rolled-back models); TFX-free
model_card.py  the model card (JSON and HTML) from the artifacts' files; TFX-free
"""
