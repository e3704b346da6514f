"""Serving the pushed models: a TF Serving-compatible REST server, its client, and real-TF-Serving configs.

Depends only on the TF Serving directory layout (<base_path>/<integer version>/saved_model.pb) and
TensorFlow, never on the pipeline code.
"""
