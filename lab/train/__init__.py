"""Training: SFT and DPO runs (full, LoRA, QLoRA) through trl and peft, as child processes with one folder each.

`config` holds the run's settings, `data` loads and validates training data, `worker` is the child process that
trains, `jobs` starts, watches, stops and resumes it through files, and `vram` predicts peak GPU memory.
"""
