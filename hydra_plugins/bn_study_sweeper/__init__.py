"""Hydra finds sweepers only inside the hydra_plugins namespace: this is bn-study's (logic in bn_study.sweep)."""
