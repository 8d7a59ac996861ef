"""Adaptation Lab core: models, generation backends, chat preferences, evaluation, training and RL.

Plain data in, plain data out. Nothing in this package imports gradio (tests/test_core_purity.py checks it),
so every capability is usable from scripts and the command line as well as from the app.
"""
