"""Evaluation: MMLU and GSM8K under published protocols, per question, batched, saved and comparable.

`extract` (answer parsing), `mmlu` and `gsm8k` (protocols), `protocol` (their shared shapes), `data` (hub or local
files), `stats` (intervals, paired tests), `runner` (EvalConfig, run_eval), `results` (saved runs, comparisons),
`report` (markdown, plotly chart, table rows); `python -m lab.eval --help` for the command line.
"""
