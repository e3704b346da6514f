"""Module code that TFX runs: the feature contract, preprocessing_fn, the Keras model and tuner_fn."""
