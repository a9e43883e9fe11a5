#!/usr/bin/env python
"""Fault injection: run the failure scenarios of "Never lose a model" as subprocesses and print what held.

    python scripts/fault_injection.py            # all scenarios, ~10 minutes on a 2-core CPU
    python scripts/fault_injection.py --only kill-fit disk-full-fit --keep /tmp/fi

Every scenario runs `vidiff` in a subprocess on a tiny model (8x8 frames, 4 per sample, a few steps). Faults are
injected at exact points by running the command through this script's ``child`` mode, which patches one function
and then calls ``vidiff.cli.main`` unchanged: ``kill -9`` is a ``SIGKILL`` the process sends itself at that point
(after a training step, halfway through writing a checkpoint, after a sampling wave), and a full disk is a real one
(a tmpfs, filled up right before the chosen write) when the script may mount one (root), else a simulated
``OSError(ENOSPC)``. Resumed runs are compared with an uninterrupted one: checkpoints bitwise (every tensor and the
step), videos by md5. Prints a markdown table ``scenario | expected | held/failed`` and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "shapes" / "tiny.yaml"
TIMEOUT = 600


# ------------------------------------------------------------------------------------------------ child mode
def _fill(disk: str) -> None:
    """Fill the file system of ``disk`` (a tmpfs) until a one-byte write fails."""
    fd = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def _disk_full(hook: dict) -> None:
    """A full disk right now: fill the tmpfs, or (no tmpfs) raise the error the OS would."""
    if hook.get("disk"):
        _fill(hook["disk"])
    else:
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")


def _kill() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _wait_for(path: str, ready: str) -> None:
    Path(ready).touch()
    while not Path(path).exists():
        time.sleep(0.1)


def install(hook: dict) -> None:
    """Patch the one function where ``hook`` injects its fault."""
    import torch

    kind, n = hook["kind"], hook.get("n", 1)
    calls = {"n": 0}

    def nth() -> bool:
        calls["n"] += 1
        return calls["n"] == n

    if kind in ("kill_in_save", "full_at_save"):
        import vidiff.lit.checkpoint as ckpt

        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            if nth():
                if kind == "kill_in_save":  # half the bytes reach the temporary file, then the process dies
                    buf = io.BytesIO()
                    real_save(obj, buf, *args, **kwargs)
                    f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                    _kill()
                _disk_full(hook)
            return real_save(obj, f, *args, **kwargs)

        ckpt.torch.save = save
    elif kind in ("kill_after_step", "wait_at_step", "delete_at_step"):
        from vidiff.lit.video_diffusion import VideoDiffusion

        real_step = VideoDiffusion.training_step

        def training_step(self, batch, batch_idx):
            calls["n"] += 1
            if calls["n"] == n + 1 and kind == "kill_after_step":  # steps 1..n are done
                _kill()
            if calls["n"] == n and kind == "wait_at_step":
                _wait_for(hook["go"], hook["ready"])
            if calls["n"] == n and kind == "delete_at_step":
                for path in hook["files"]:
                    os.remove(path)
            return real_step(self, batch, batch_idx)

        VideoDiffusion.training_step = training_step
    elif kind in ("nan_at_step", "spike_at_step"):
        from vidiff.lit.video_diffusion import VideoDiffusion

        real_loss = VideoDiffusion.loss
        bad = {"nan_at_step": set(hook.get("nan", [])), "spike_at_step": set(hook.get("spike", []))}

        def loss(self, batch, net, *args, **kwargs):
            value = real_loss(self, batch, net, *args, **kwargs)
            if "drop_prob" not in kwargs:  # validation and sampling losses are left alone
                return value
            calls["n"] += 1
            if calls["n"] in bad["nan_at_step"]:
                return value * float("nan")
            if calls["n"] in bad["spike_at_step"]:
                return value * 1000.0
            return value

        VideoDiffusion.loss = loss
    elif kind in ("kill_after_wave", "full_at_state", "wait_at_state"):
        import vidiff.pipelines.long_video as sample

        real_state = sample._save_state

        def save_state(*args, **kwargs):
            if kind == "wait_at_state" and nth():
                _wait_for(hook["go"], hook["ready"])
                return real_state(*args, **kwargs)
            if kind == "full_at_state" and nth():
                _disk_full(hook)
            result = real_state(*args, **kwargs)
            if kind == "kill_after_wave" and nth():
                _kill()
            return result

        sample._save_state = save_state
    elif kind == "full_at_mp4":
        import vidiff.io.video as video

        real_encode = video._encode_mp4

        def encode(*args, **kwargs):
            if nth():
                _disk_full(hook)
            return real_encode(*args, **kwargs)

        video._encode_mp4 = encode
    else:
        raise ValueError(f"unknown hook {kind!r}")


def entry_points(hook: dict) -> int:
    """Run ``vidiff.cli.main`` on each of ``hook["argvs"]`` in this one process (saves a start-up per command);
    writes ``[{"rc", "err", "raised"}]`` to ``hook["out"]``. An exception escaping ``main`` is what would print a
    traceback."""
    import contextlib

    from vidiff.cli import main

    results = []
    for argv in hook["argvs"]:
        err, raised, rc = io.StringIO(), None, None
        with contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except BaseException as exc:  # noqa: BLE001 - SystemExit too: anything but a return is a failure
                raised = f"{type(exc).__name__}: {str(exc)[:300]}"
        results.append({"rc": rc, "err": err.getvalue(), "raised": raised})
    Path(hook["out"]).write_text(json.dumps(results))
    return 0


def child(hook: dict, argv: list[str]) -> int:
    if hook["kind"] == "entry_points":
        return entry_points(hook)
    install(hook)
    from vidiff.cli import main

    return main(argv)


# ----------------------------------------------------------------------------------------------- the parent
@dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        lines = [line for line in self.err.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def one_line(self, command: str, prefix: str = "error: ") -> bool:
        """Ended with ``vidiff COMMAND: error: ...`` and no traceback, exit status != 0."""
        return (self.rc != 0 and self.last_line.startswith(f"vidiff {command}: {prefix}")
                and "Traceback" not in self.err)


def vidiff(*args, hook: dict | None = None, wait: bool = True, log: Path | None = None):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "vidiff", *map(str, args)]
    if hook is not None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "child", json.dumps(hook), "--", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    if log is not None:
        log.write_text(f"$ {' '.join(cmd)}\nrc={p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
    return Run(p.returncode, p.stdout, p.stderr)


def fit_args(root: Path, max_steps: int = 4, *extra) -> list:
    net = "--model.init_args.net.init_args."
    return [
        "fit", "--config", TINY, "--trainer.default_root_dir", root, "--trainer.max_steps", max_steps,
        "--trainer.val_check_interval", 2, "--trainer.limit_val_batches", 1, "--trainer.log_every_n_steps", 1,
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger", "false",
        "--model.init_args.image_size", 8, "--model.init_args.max_frames", 4, "--model.init_args.num_timesteps", 100,
        f"{net}model_channels", 8, f"{net}channel_mult", "[1, 2]", f"{net}attention_resolutions", "[]",
        f"{net}temporal_attention_resolutions", "[]", f"{net}norm_groups", 4,
        "--samples.num_videos", 1, "--samples.steps", 2, *extra,
    ]


def shapes_data() -> list:
    return ["--data.init_args.image_size", 8, "--data.init_args.max_frames", 4, "--data.init_args.length", 16,
            "--data.init_args.train_videos", 10, "--data.init_args.val_videos", 2, "--data.init_args.batch_size", 2]


def tiny_fit(root: Path, max_steps: int = 4, *extra) -> list:
    return fit_args(root, max_steps, *shapes_data(), *extra)


def sample_args(ckpt: Path, out: Path, *extra) -> list:
    return ["sample", "--ckpt", ckpt, "--length", 24, "--steps", 2, "--num-videos", 2, "--out", out,
            "--no-progress", *extra]


def same_weights(a: Path, b: Path) -> bool:
    import torch

    if not (a.is_file() and b.is_file()):
        return False
    x, y = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    sx, sy = x["state_dict"], y["state_dict"]
    return (x["global_step"] == y["global_step"] and sx.keys() == sy.keys()
            and all(torch.equal(sx[k], sy[k]) for k in sx))


def step_of(path: Path) -> int | None:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except Exception:  # noqa: BLE001 - a broken file is what some scenarios look for
        return None


def md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.glob("video_*.mp4"))}


def temporaries(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".tmp" in p.name]


class Disk:
    """A small tmpfs to fill up (root only); ``path`` None when it cannot be mounted (the fault is simulated)."""

    def __init__(self, where: Path, size: str = "64m") -> None:
        self.path: Path | None = where
        where.mkdir(parents=True, exist_ok=True)
        ok = os.geteuid() == 0 and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
        ).returncode == 0
        if not ok:
            self.path = None

    def free(self) -> None:
        if self.path is not None:
            (self.path / "filler").unlink(missing_ok=True)

    def close(self) -> None:
        if self.path is not None:
            subprocess.run(["umount", str(self.path)], capture_output=True)

    @property
    def how(self) -> str:
        return "real (tmpfs)" if self.path is not None else "simulated ENOSPC"


class Scenarios:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.rows: list[tuple[str, str, bool, str]] = []
        self._ref_fit: Path | None = None
        self._ref_sample: Path | None = None

    def record(self, name: str, expected: str, held: bool, detail: str = "") -> None:
        self.rows.append((name, expected, held, detail))
        print(f"[{'held' if held else 'FAILED'}] {name}: {detail}", flush=True)

    def log(self, name: str) -> Path:
        return self.work / "logs" / f"{name}.log"

    # references -------------------------------------------------------------------------------------------
    def ref_fit(self) -> Path:
        if self._ref_fit is None:
            root = self.work / "ref-fit"
            run = vidiff(*tiny_fit(root), log=self.log("ref-fit"))
            if run.rc != 0:
                raise RuntimeError(f"the reference fit failed:\n{run.err[-3000:]}")
            self._ref_fit = root / "checkpoints" / "last.ckpt"
        return self._ref_fit

    def ref_sample(self) -> Path:
        if self._ref_sample is None:
            out = self.work / "ref-sample"
            run = vidiff(*sample_args(self.ref_fit(), out), log=self.log("ref-sample"))
            if run.rc != 0:
                raise RuntimeError(f"the reference sample failed:\n{run.err[-3000:]}")
            self._ref_sample = out
        return self._ref_sample

    # kills ------------------------------------------------------------------------------------------------
    def kill_fit(self) -> None:
        root = self.work / "kill-fit"
        killed = vidiff(*tiny_fit(root), hook={"kind": "kill_after_step", "n": 3}, log=self.log("kill-fit-a"))
        resumed = vidiff(*tiny_fit(root, 4, "--ckpt_path", "last"), log=self.log("kill-fit-b"))
        last = root / "checkpoints" / "last.ckpt"
        same = same_weights(last, self.ref_fit())
        self.record("kill -9 during fit (after step 3 of 4), resume `--ckpt_path last`",
                    "killed run leaves last.ckpt of step 2; resumed weights == uninterrupted, bitwise",
                    killed.rc == -signal.SIGKILL and resumed.rc == 0 and same,
                    f"rc {killed.rc} then {resumed.rc}; bitwise equal: {same}")

    def kill_save(self) -> None:
        root = self.work / "kill-save"
        # saves: step 2 best + last, step 4 best (when val improved) / last: die halfway through the third write
        killed = vidiff(*tiny_fit(root), hook={"kind": "kill_in_save", "n": 3}, log=self.log("kill-save-a"))
        ckpts = root / "checkpoints"
        left = temporaries(ckpts)
        step = step_of(ckpts / "last.ckpt")
        resumed = vidiff(*tiny_fit(root, 4, "--ckpt_path", "last"), log=self.log("kill-save-b"))
        same = same_weights(ckpts / "last.ckpt", self.ref_fit())
        swept = not temporaries(ckpts)
        self.record("kill -9 during a checkpoint write, resume `--ckpt_path last`",
                    "last.ckpt stays the previous complete one; the half-written temp file is swept at the next "
                    "start; resumed weights == uninterrupted, bitwise",
                    killed.rc == -signal.SIGKILL and step is not None and bool(left) and swept and resumed.rc == 0
                    and same,
                    f"rc {killed.rc}; last.ckpt readable at step {step}; {len(left)} temp file(s) left, swept: {swept};"
                    f" resumed bitwise equal: {same}")

    def kill_sample(self) -> None:
        out = self.work / "kill-sample"
        killed = vidiff(*sample_args(self.ref_fit(), out), hook={"kind": "kill_after_wave", "n": 2},
                        log=self.log("kill-sample-a"))
        had_state = (out / "state" / "state.safetensors").is_file()
        resumed = vidiff(*sample_args(self.ref_fit(), out, "--resume"), log=self.log("kill-sample-b"))
        ref, got = md5s(self.ref_sample()), md5s(out)
        self.record("kill -9 during sampling (after wave 2), `vidiff sample --resume`",
                    "resumed videos == uninterrupted, md5",
                    killed.rc == -signal.SIGKILL and had_state and resumed.rc == 0 and bool(ref) and ref == got,
                    f"rc {killed.rc} then {resumed.rc}; state kept: {had_state}; md5 equal: {ref == got} "
                    f"({len(got)} videos)")

    # disk full --------------------------------------------------------------------------------------------
    def disk_full_fit(self) -> None:
        disk = Disk(self.work / "disk-fit")
        try:
            root = (disk.path or self.work / "disk-fit") / "run"
            hook = {"kind": "full_at_save", "n": 3, "disk": str(disk.path) if disk.path else None}
            full = vidiff(*tiny_fit(root), hook=hook, log=self.log("disk-full-fit-a"))
            ckpts = root / "checkpoints"
            step, left = step_of(ckpts / "last.ckpt"), temporaries(ckpts)
            disk.free()
            resumed = vidiff(*tiny_fit(root, 4, "--ckpt_path", "last"), log=self.log("disk-full-fit-b"))
            same = same_weights(ckpts / "last.ckpt", self.ref_fit())
            line = full.last_line
            self.record(f"disk full during a checkpoint save ({disk.how}), free space, resume",
                        "one line `no space left on device while writing X; the previous checkpoint Y is intact`; "
                        "no temp file left; resumed weights == uninterrupted, bitwise",
                        full.one_line("fit") and "no space left on device while writing" in line and "is intact" in line
                        and step == 2 and not left and resumed.rc == 0 and same,
                        f"rc {full.rc}: `{line}`; last.ckpt step {step}; resumed bitwise equal: {same}")
        finally:
            disk.close()

    def disk_full_sample(self) -> None:
        for what, kind in (("the sampling state", "full_at_state"), ("an mp4", "full_at_mp4")):
            disk = Disk(self.work / f"disk-{kind}")
            try:
                out = (disk.path or self.work / f"disk-{kind}") / "out"
                hook = {"kind": kind, "n": 2, "disk": str(disk.path) if disk.path else None}
                full = vidiff(*sample_args(self.ref_fit(), out), hook=hook, log=self.log(f"disk-{kind}-a"))
                left = temporaries(out)
                disk.free()
                resumed = vidiff(*sample_args(self.ref_fit(), out, "--resume"), log=self.log(f"disk-{kind}-b"))
                ref, got = md5s(self.ref_sample()), md5s(out)
                line = full.last_line
                self.record(f"disk full while writing {what} in `vidiff sample` ({disk.how}), free space, --resume",
                            "one line naming the file and what is kept; resumed videos == uninterrupted, md5",
                            full.one_line("sample") and "no space left on device while writing" in line and not left
                            and resumed.rc == 0 and ref == got,
                            f"rc {full.rc}: `{line}`; md5 equal after --resume: {ref == got}")
            finally:
                disk.close()

    # concurrent writers -----------------------------------------------------------------------------------
    def _concurrent(self, name: str, first_args: list, second_args: list, hook_kind: str, command: str,
                    check) -> None:
        ready, go = self.work / f"{name}.ready", self.work / f"{name}.go"
        first = vidiff(*first_args, hook={"kind": hook_kind, "n": 1, "ready": str(ready), "go": str(go)}, wait=False)
        deadline = time.time() + TIMEOUT
        while not ready.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        second = vidiff(*second_args, log=self.log(f"{name}-second"))
        go.touch()
        out, err = first.communicate(timeout=TIMEOUT)
        self.log(f"{name}-first").write_text(f"rc={first.returncode}\n{out}\n{err}")
        ok, detail = check()
        line = second.last_line
        self.record(f"two `vidiff {command}` into one folder",
                    "the second stops at once in one line naming the first; the first finishes unharmed",
                    ready.exists() and second.one_line(command, "") and "is in use by pid" in line
                    and first.returncode == 0 and ok,
                    f"second rc {second.rc}: `{line[:140]}...`; first rc {first.returncode}; {detail}")

    def concurrent(self) -> None:
        root = self.work / "two-fits"
        last = root / "checkpoints" / "last.ckpt"
        self._concurrent("two-fits", tiny_fit(root), tiny_fit(root), "wait_at_step", "fit",
                         lambda: (same_weights(last, self.ref_fit()), f"first's weights == reference: "
                                  f"{same_weights(last, self.ref_fit())}"))
        out = self.work / "two-samples"
        self._concurrent("two-samples", sample_args(self.ref_fit(), out), sample_args(self.ref_fit(), out),
                         "wait_at_state", "sample",
                         lambda: (md5s(out) == md5s(self.ref_sample()), f"first's videos md5 == reference: "
                                  f"{md5s(out) == md5s(self.ref_sample())}"))

    # data files -------------------------------------------------------------------------------------------
    def bad_data(self) -> None:
        import torch

        from vidiff.io import write_video

        train, val = self.work / "videos" / "train", self.work / "videos" / "val"
        for i in range(4):
            write_video(train / f"v{i}.mp4", torch.rand(12, 3, 16, 16) * 2 - 1)
        write_video(val / "w0.mp4", torch.rand(12, 3, 16, 16) * 2 - 1)
        (train / "junk.mp4").write_bytes(b"not a video" * 100)
        (train / "empty.mp4").write_bytes(b"")
        data = self.work / "videos" / "data.yaml"
        data.write_text(json.dumps({"class_path": "vidiff.data.VideoFolderDataModule", "init_args": {
            "root": str(train), "val_root": str(val), "image_size": 8, "max_frames": 4, "batch_size": 2}}))
        root = self.work / "bad-data"
        run = vidiff(*fit_args(root, 6, "--data", data),  # 4 training videos, batch 2: 3 epochs
                     hook={"kind": "delete_at_step", "n": 2, "files": [str(train / "v3.mp4")]},
                     log=self.log("bad-data"))
        text = run.err
        named = "junk.mp4" in text and "empty.mp4" in text and "skipping unreadable video v3.mp4" in text
        step = step_of(root / "checkpoints" / "last.ckpt")
        self.record("corrupt, empty and vanishing (deleted at step 2) video files",
                    "training goes on to the end; each bad file is named in a warning",
                    run.rc == 0 and named and step == 6,
                    f"rc {run.rc}; warnings name junk/empty/vanished: {named}; last.ckpt step {step}")

    # NaN and spikes ---------------------------------------------------------------------------------------
    def nan(self) -> None:
        root = self.work / "nan-stop"
        run = vidiff(*tiny_fit(root), hook={"kind": "nan_at_step", "nan": [3]}, log=self.log("nan-stop"))
        step = step_of(root / "checkpoints" / "last.ckpt")
        stopped = "non-finite training loss" in run.err and "at global step 2" in run.err
        self.record("NaN loss at step 3 (on_nonfinite: error)",
                    "stops before the optimizer step, naming the step; last.ckpt (step 2) intact",
                    run.rc != 0 and stopped and step == 2,
                    f"rc {run.rc}; stop message: {stopped}; last.ckpt step {step}")
        root = self.work / "nan-skip"
        run = vidiff(*tiny_fit(root, 26, "--model.init_args.on_nonfinite", "skip",
                               "--model.init_args.loss_spike_factor", 10, "--trainer.val_check_interval", 26),
                     hook={"kind": "spike_at_step", "nan": [3], "spike": [24]}, log=self.log("nan-skip"))
        summary = next((line for line in run.out.splitlines() if "skipped steps:" in line), "")
        ok = " 2 of " in summary and "(1 non-finite, 1 loss spikes)" in summary
        self.record("NaN at step 3 and a 1000x loss spike at step 24 (on_nonfinite: skip, loss_spike_factor: 10)",
                    "both steps skipped, the run finishes, the summary counts them",
                    run.rc == 0 and ok, f"rc {run.rc}; `{summary.strip()}`")

    # unsafe checkpoints -----------------------------------------------------------------------------------
    def unsafe(self) -> None:
        import torch

        evil = self.work / "evil.ckpt"
        torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {}, "x": Custom()}, evil)
        out = self.work / "unsafe-out"
        (out / "tok").mkdir(parents=True, exist_ok=True)
        entries = {
            "vidiff sample --ckpt": ["sample", "--ckpt", evil, "--out", out / "s"],
            "vidiff evaluate --ckpt": ["evaluate", "--ckpt", evil, "--task", "prediction", "--out", out / "e"],
            "vidiff evaluate --i3d": ["evaluate", "--ckpt", self.ref_fit(), "--task", "prediction", "--i3d", evil,
                                      "--out", out / "i"],
            "vidiff txt2img --ckpt": ["txt2img", "--ckpt", evil, "--prompt", "a", "--out", out / "t"],
            "vidiff txt2img --sd-ckpt": ["txt2img", "--sd-ckpt", evil, "--tokenizer", out / "tok", "--prompt", "a",
                                         "--out", out / "t"],
            "vidiff export --ckpt": ["export", "--ckpt", evil, "--out", out / "w.safetensors"],
            "vidiff fit --ckpt_path": tiny_fit(self.work / "unsafe-fit1", 2, "--ckpt_path", evil),
            "vidiff fit autoencoder_ckpt": tiny_fit(self.work / "unsafe-fit2", 2,
                                                    "--model.init_args.autoencoder_ckpt", evil),
        }
        report = self.work / "unsafe.json"
        hook = {"kind": "entry_points", "argvs": [[str(a) for a in argv] for argv in entries.values()],
                "out": str(report)}
        vidiff(hook=hook, log=self.log("unsafe"))
        results = []
        for (name, _), got in zip(entries.items(), json.loads(report.read_text())):
            run = Run(2 if got["rc"] is None else got["rc"], "", got["err"] + (got["raised"] or ""))
            if got["raised"]:
                run.err += "\nTraceback (an exception escaped vidiff.cli.main)"
            command = name.split()[1]
            results.append((name, run.one_line(command) and f"{evil} is not a safe checkpoint" in run.last_line,
                            run))
        held = [name for name, ok, _ in results if ok]
        failed = [name for name, ok, _ in results if not ok]
        example = results[0][2].last_line
        self.record(f"unsafe checkpoint (pickled custom class) at {len(entries)} entry points (one process, "
                    "`vidiff.cli.main` per command)",
                    "one line `X is not a safe checkpoint: <reason>; ...`, rc != 0, no traceback, at each",
                    not failed, f"{len(held)}/{len(entries)} held" + (f"; failed: {failed}" if failed else "")
                    + f"; e.g. `{example[:160]}...`")


class Custom:
    """A class outside torch's safe list: ``torch.load(weights_only=True)`` refuses to import it."""


SCENARIOS = ("kill-fit", "kill-save", "kill-sample", "disk-full-fit", "disk-full-sample", "concurrent",
             "bad-data", "nan", "unsafe")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        hook = json.loads(sys.argv[2])
        argv = sys.argv[sys.argv.index("--") + 1:]
        return child(hook, argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--keep", default=None, help="work folder to keep (default: a temporary one, removed)")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vidiff-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    sys.path.insert(0, str(REPO))
    start = time.time()
    s = Scenarios(work)
    try:
        for name in args.only:
            t = time.time()
            try:
                getattr(s, name.replace("-", "_"))()
            except Exception as err:  # noqa: BLE001 - a broken scenario is a failed row, the others still run
                s.record(name, "(scenario ran)", False, f"{type(err).__name__}: {str(err)[:300]}")
            print(f"  ({name}: {time.time() - t:.0f} s)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(s.rows)} scenarios in {time.time() - start:.0f} s (logs in {work / 'logs'})\n")
    print("| scenario | expected | result |\n| --- | --- | --- |")
    for name, expected, held, detail in s.rows:
        print(f"| {name} | {expected} | {'held' if held else '**failed**'}: {detail} |")
    return 0 if all(held for _, _, held, _ in s.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
