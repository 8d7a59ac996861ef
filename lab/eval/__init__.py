"""Evaluation: MMLU and GSM8K under published protocols, per question, batched, saved and comparable.

`extract` (answer parsing), `mmlu` and `gsm8k` (protocols), `data` (hub or local files), `stats` (intervals, paired
tests), `runner` (EvalConfig, run_eval), `results` (saved runs, comparisons); `python -m lab.eval --help` for the CLI.
"""
