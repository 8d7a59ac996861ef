"""Training jobs as child processes with one folder each in LAB_HOME/runs; their state is read from files only.

`start` writes config.json and launches `python -m lab.train.jobs supervise RUN_DIR` in its own session (so its
process group holds the whole tree); the supervisor runs the worker with stdout and stderr going to log.txt and writes
exit.json with the worker's exit code when it ends. Any process can therefore tell running, finished, failed or
stopped apart by reading the folder (LLaMA-Factory's runner works the same way): a browser that reconnects, or a
second app, re-attaches. `stop` marks the run as stopped and kills the process group (SIGTERM, then SIGKILL), which
frees the GPU; `resume` starts the worker again on the folder, and it continues from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lab.paths import runs_dir
from lab.train.config import TrainConfig
from lab.train.worker import EXIT_BAD_DATA

_CHILDREN: dict[str, subprocess.Popen] = {}  # supervisors started by this process, reaped when polled


@dataclass
class RunStatus:
    """What the files of one run say about it."""

    run_dir: Path
    state: str  # 'running', 'finished', 'failed', 'stopped' or 'new'
    returncode: int | None = None  # worker exit code (negative: killed by that signal)
    started: float | None = None
    ended: float | None = None
    config: dict = field(default_factory=dict)
    log_tail: str = ""

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def output(self) -> Path | None:
        """The trained adapter (or full model) folder once the run has finished."""
        for name in ("adapter", "model"):
            if (self.run_dir / name).is_dir() and self.state == "finished":
                return self.run_dir / name
        return None

    def describe(self) -> str:
        """One line for people: state, exit code and what it means."""
        text = f"{self.run_id}: {self.state}"
        if self.state == "failed" and self.returncode is not None:
            text += f" (exit code {self.returncode}{_signal_name(self.returncode)})"
        return text


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f", killed by {signal.Signals(-code).name}"
        except ValueError:
            return ""
    return ", the data was refused: see the log" if code == EXIT_BAD_DATA else ""


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def new_run_dir(cfg: TrainConfig) -> Path:
    """A fresh folder LAB_HOME/runs/<time>-<method>-<finetune>[-<name>]; the name becomes the adapter's name."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    label = "".join(c if c.isalnum() or c in "-_" else "-" for c in cfg.name.strip())[:40]
    base = f"{stamp}-{cfg.method}-{cfg.finetune}" + (f"-{label}" if label else "")
    path, n = runs_dir() / base, 1
    while path.exists():
        n += 1
        path = runs_dir() / f"{base}-{n}"
    path.mkdir(parents=True)
    return path


def start(cfg: TrainConfig, run_dir: Path | None = None) -> Path:
    """Write the config and launch the job in the background; returns the run folder at once."""
    from lab.train import distributed

    dc = distributed.DistributedConfig.from_train_config(cfg)
    if dc.distributed:  # refuse at once, in the UI, what this host cannot run (the RuntimeError says what to do)
        distributed.check_environment(dc, distributed.visible_gpus())
    run_dir = Path(run_dir) if run_dir else new_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.to_json(run_dir / "config.json")
    if dc.distributed:
        distributed.write_accelerate_config(dc, run_dir)
    _launch(run_dir)
    return run_dir


def _launch(run_dir: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    for name in ("exit.json", "stopped.json"):
        (run_dir / name).unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.train.jobs", "supervise", str(run_dir)],
        cwd=root, env=env, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _CHILDREN[str(run_dir)] = proc
    _write_json(run_dir / "pid.json", {"pid": proc.pid, "pgid": proc.pid, "started": time.time()})


def resume(run_dir: Path) -> Path:
    """Start a stopped or failed run again; the worker continues from its last checkpoint."""
    st = status(run_dir)
    if st.state not in ("stopped", "failed"):
        raise ValueError(f"only a stopped or failed run can be resumed; {st.run_id} is {st.state}")
    with open(run_dir / "log.txt", "a") as log:
        log.write(f"\n--- resumed at {datetime.now():%Y-%m-%d %H:%M:%S} ---\n")
    _launch(run_dir)
    return run_dir


def _alive(pid: int, run_dir: Path) -> bool:
    proc = _CHILDREN.get(str(run_dir))
    if proc is not None and proc.pid == pid:
        return proc.poll() is None  # reaps our own finished child, so it does not linger as a zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a reused pid belongs to another program
        return "lab.train.jobs" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True


def log_tail(run_dir: Path, n_lines: int = 40) -> str:
    """The last lines of the job's log (stdout and stderr of the worker)."""
    try:
        with open(run_dir / "log.txt", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * n_lines * 4))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n_lines:])
    except OSError:
        return ""


def status(run_dir: Path, n_lines: int = 40) -> RunStatus:
    """Read the run's state from its folder."""
    run_dir = Path(run_dir)
    pid = _read_json(run_dir / "pid.json")
    exit_info = _read_json(run_dir / "exit.json")
    stopped = _read_json(run_dir / "stopped.json")
    st = RunStatus(run_dir, "new", config=_read_json(run_dir / "config.json") or {}, log_tail=log_tail(run_dir, n_lines))
    if pid:
        st.started = pid["started"]
    if pid and _alive(pid["pid"], run_dir):
        st.state = "running"
    elif stopped:
        st.state, st.ended = "stopped", stopped["time"]
    elif exit_info:
        st.returncode, st.ended = exit_info["returncode"], exit_info["time"]
        st.state = "finished" if st.returncode == 0 else "failed"
    elif pid:  # the supervisor vanished without a word: killed with the machine or by hand
        st.state = "failed"
    return st


def stop(run_dir: Path, grace_s: float = 15.0) -> RunStatus:
    """Kill the job's whole process tree (SIGTERM, then SIGKILL after grace_s) and record it as stopped."""
    run_dir = Path(run_dir)
    pid = _read_json(run_dir / "pid.json")
    if not pid or not _alive(pid["pid"], run_dir):
        return status(run_dir)
    _write_json(run_dir / "stopped.json", {"time": time.time()})
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid["pgid"], sig)
        except ProcessLookupError:
            break
        deadline = time.time() + wait
        while time.time() < deadline and _group_alive(pid["pgid"], run_dir):
            time.sleep(0.1)
        if not _group_alive(pid["pgid"], run_dir):
            break
    return status(run_dir)


def _group_alive(pgid: int, run_dir: Path) -> bool:
    proc = _CHILDREN.get(str(run_dir))
    if proc is not None:
        proc.poll()
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def list_runs() -> list[RunStatus]:
    """Every run folder in LAB_HOME/runs, newest first."""
    dirs = [p for p in runs_dir().iterdir() if (p / "config.json").is_file()]
    return [status(p, n_lines=0) for p in sorted(dirs, key=lambda p: p.stat().st_mtime, reverse=True)]


class MetricsReader:
    """Incremental reader of metrics.jsonl: each `poll()` returns only records appended since the last one."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.offset = 0

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        return [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]


def read_metrics(run_dir: Path) -> list[dict]:
    """All metric records of a run, in order."""
    return MetricsReader(run_dir).poll()


def follow(run_dir: Path, interval_s: float = 1.0):
    """Yield (status, new metric records) every interval until the run has ended (long work yields progress)."""
    reader = MetricsReader(run_dir)
    while True:
        st = status(run_dir, n_lines=20)
        yield st, reader.poll()
        if st.state != "running":
            return
        time.sleep(interval_s)


def supervise(run_dir: Path) -> int:
    """Run the worker, log its output, and record its exit code in exit.json (the supervisor's whole job)."""
    from lab.train import distributed

    dc = distributed.DistributedConfig.from_train_config(TrainConfig.from_json(run_dir / "config.json"))
    if dc.distributed and not (run_dir / "accelerate.yaml").is_file():
        distributed.write_accelerate_config(dc, run_dir)
    with open(run_dir / "log.txt", "ab") as log:  # one GPU: the worker itself; several: accelerate launch of it
        proc = subprocess.Popen(distributed.launch_command(dc, run_dir),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        code = proc.wait()
    _write_json(run_dir / "exit.json", {"returncode": code, "time": time.time()})
    return code


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "supervise":
        raise SystemExit("usage: python -m lab.train.jobs supervise RUN_DIR")
    raise SystemExit(supervise(Path(sys.argv[2])))
