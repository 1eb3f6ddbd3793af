"""Bounded soak test of `splatent-viewer`: N headless Chromium clients orbit a trained scene for M minutes.

    python benchmarks/viewer_soak.py                                   # 4 clients, 5 minutes, quick demo-scene run
    python benchmarks/viewer_soak.py --load-config outputs/demo --clients 4 --minutes 5
    python benchmarks/viewer_soak.py --clients 1 --minutes 0.2 --no-kill-one   # a smoke run

Loopback only, stops by itself. The viewer runs as its own process (``splatent-viewer --host 127.0.0.1``, so its
memory is measured alone); each client is a headless Chromium (Debian ``chromium``) that orbits the scene with
real mouse drags on the page (viser's orbit controls: previews while dragging) and rests between drags (full
frames in the viewer's default mode: enhanced with the shipped refiner). Recorded:

- frames received per client: background-image messages delivered to the page (counted in the page, on the
  messages viser's websocket worker hands to the main thread), sampled over time;
- the server's resident memory (RSS) and thread count over time (``/proc/<pid>/status``);
- errors: render errors and tracebacks in the server's log, failures of the clients' drivers, the server's exit
  after Ctrl+C (SIGINT) at the end, and how long it took.

Midway one client is killed (SIGKILL of its browser: the connection drops without a goodbye); the server must
drop its session and keep serving the others (its render thread ends: the thread count falls back).
Without ``--load-config`` a quick run folder is trained first from the embedded demo scene (core trainer,
``--train-steps``). Writes ``--output`` (JSON, atomically) and prints a table.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tyro
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from splatent_viewer.atomic import write_json_atomic
from splatent_viewer.devices import DeviceName
from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.viewer.headless import HeadlessChromium, find_chromium

CONSOLE = Console()

# Counts the viewer's frames where the page receives them: viser decodes its websocket in a worker and posts
# {type: "message_batch", messages: [...]} to the main thread; a frame is a BackgroundImageMessage.
_COUNT_FRAMES_JS = """
(() => {
  const NativeWorker = window.Worker;
  window.__splatentSoak = {frames: 0, batches: 0};
  window.Worker = class extends NativeWorker {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const data = event.data;
        if (!data || data.type !== "message_batch") return;
        window.__splatentSoak.batches += 1;
        for (const message of data.messages) {
          if (message && message.type === "BackgroundImageMessage") window.__splatentSoak.frames += 1;
        }
      });
    }
  };
})();
"""


@dataclass
class Args:
    load_config: Path | None = None
    """A trained run (splatent-demo folder or nerfstudio config.yml); default: train the demo scene quickly here."""
    clients: int = 4
    """Headless Chromium clients."""
    minutes: float = 5.0
    """How long the clients orbit (the run then stops by itself)."""
    kill_one: bool = True
    """Kill one client (SIGKILL of its browser) halfway through."""
    refiner: str = "embedded"
    """The viewer's --refiner (embedded: the shipped one; none: decoded frames only)."""
    device: DeviceName = "auto"
    """The viewer's --device."""
    viewer_args: tuple[str, ...] = ()
    """More options for splatent-viewer, e.g. --viewer-args --max-resolution 256."""
    drag_seconds: float = 3.0
    """Each orbit drag lasts this long (pointer moves every 50 ms: previews)..."""
    rest_seconds: float = 2.0
    """... then the camera rests this long (full-quality frames)."""
    sample_seconds: float = 5.0
    """Interval of the memory / thread / frame-count samples."""
    train_steps: int = 100
    """Core-trainer steps of the quick demo-scene run (without --load-config)."""
    work_dir: Path = Path("outputs/viewer_soak")
    """Where the quick run folder and the server log go."""
    output: Path = Path("benchmarks/results/viewer_soak.json")
    """JSON with every sample and the summary."""
    window: tuple[int, int] = (960, 640)
    """Browser window (width, height)."""


@dataclass
class ClientRecord:
    """One client's run."""

    index: int
    """0-based client number (order of start)."""
    frames: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since the soak started, frames received so far) samples."""
    frames_received: int = 0
    """Frames received in all (the last sample)."""
    drags: int = 0
    """Orbit drags done."""
    killed_at: float | None = None
    """Seconds since the start at which this client was killed."""
    errors: list[str] = field(default_factory=list)
    """Driver failures (CDP errors, a browser that died unasked)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_status(pid: int) -> tuple[float, int] | None:
    """(RSS in MB, threads) of a Linux process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024
    threads = int(re.search(r"Threads:\s+(\d+)", text).group(1))
    return rss, threads


def quick_run(*, steps: int, work_dir: Path) -> Path:
    """A run folder (splats + reference bank, TAEF2) of the embedded demo scene after ``steps`` CPU core-trainer
    steps (as the tests' tiny run, at the demo scene's size)."""
    import torch

    from splatent_viewer.codecs import load_codec
    from splatent_viewer.data.scene import load_scene
    from splatent_viewer.paths import assets_dir
    from splatent_viewer.trained import ReferenceBank, save_trained_run
    from splatent_viewer.training.trainer import (
        LatentSplatTrainerConfig,
        train_latent_splats,
    )

    out = work_dir / f"demo_run_{steps}_steps"
    if (out / "splats.safetensors").is_file():
        CONSOLE.print(f"using the run folder {escape(str(out))}")
        return out
    CONSOLE.print(f"training the demo scene for {steps} CPU steps → {escape(str(out))}")
    torch.manual_seed(0)
    scene_dir = assets_dir() / "demo_scene"
    scene = load_scene(scene_dir)
    codec = load_codec("taef2")
    result = train_latent_splats(
        scene=scene, codec=codec, device="cpu", config=LatentSplatTrainerConfig(steps=steps, densify=False, sh_degree=1)
    )
    train = scene.split_indices["train"].tolist()
    save_trained_run(
        output_dir=out,
        params=result.params,
        codec=codec,
        sh_degree=result.sh_degree,
        references=ReferenceBank.from_scene(scene=scene, indices=train, codec=codec, device="cpu"),
        scene_path=scene_dir,
        train_indices=train,
        extra={"steps": steps},
        rgb_background=result.rgb_background,
        latent_background=result.latent_background,
    )
    return out


class Server:
    """``splatent-viewer`` in its own process; its output goes to a log file (and is scanned for its URL)."""

    def __init__(self, *, args: Args, run: Path, log_path: Path) -> None:
        self.log_path = log_path
        cmd = [
            sys.executable,
            "-m",
            "splatent_viewer.scripts.viewer_cli",
            "--load-config",
            str(run),
            "--host",
            "127.0.0.1",
            "--port",
            str(_free_port()),
            "--refiner",
            args.refiner,
            "--device",
            args.device,
            *args.viewer_args,
        ]
        self.command = cmd
        # faulthandler: a server that does not stop gets SIGABRT, which then dumps every thread's stack into the log
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1", COLUMNS="200")
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()
            self._lines.put(line)

    def wait_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            match = re.search(r"open (http://127\.0\.0\.1:\d+)", line)
            if match:
                return match.group(1)
        raise SplatentError(
            f"splatent-viewer did not start within {timeout:.0f} s; its output:\n{''.join(seen)[-2000:]}"
        )

    def stop(self, *, timeout: float = 180.0) -> tuple[int, float]:
        """Ctrl+C (SIGINT), as a user stops it; returns its exit code and how long it took to exit. One that is
        still running after ``timeout`` seconds gets SIGABRT (its thread stacks go to the log), then SIGKILL."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGABRT)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        seconds = time.monotonic() - t0
        time.sleep(0.5)  # the pump thread writes the last lines
        self._log.close()
        return self.proc.returncode, seconds


def _drive(
    *,
    browser: HeadlessChromium,
    record: ClientRecord,
    args: Args,
    stop: threading.Event,
    killed: threading.Event,
    t0: float,
) -> None:
    """Orbits until ``stop``: drags across the left part of the page (the 3D view), rests, repeats."""
    w, h = args.window
    y = h // 2
    x0, x1 = int(0.1 * w), int(0.5 * w)
    try:
        while not stop.is_set():
            browser.call(
                "Input.dispatchMouseEvent", type="mousePressed", x=x0, y=y, button="left", buttons=1, clickCount=1
            )
            steps = max(1, int(args.drag_seconds / 0.05))
            for i in range(1, steps + 1):
                if stop.wait(0.05):
                    break
                x = x0 + (x1 - x0) * i // steps
                browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, button="left", buttons=1)
            browser.call(
                "Input.dispatchMouseEvent", type="mouseReleased", x=x1, y=y, button="left", buttons=0, clickCount=1
            )
            record.drags += 1
            stop.wait(args.rest_seconds)
    except Exception as e:  # noqa: BLE001 - recorded; a killed client's driver ends here by design
        if not killed.is_set():
            record.errors.append(f"{time.monotonic() - t0:.1f} s: {type(e).__name__}: {e}")


def _frames(browser: HeadlessChromium) -> int | None:
    try:
        value = browser.evaluate("window.__splatentSoak ? window.__splatentSoak.frames : -1")
    except Exception:  # noqa: BLE001 - a killed client
        return None
    return int(value) if isinstance(value, (int, float)) and value >= 0 else None


def soak(args: Args) -> dict:
    """Runs the soak and returns its record (also written to ``args.output``)."""
    if find_chromium() is None:
        raise SplatentError("No Chromium found; on Debian: apt-get install -y chromium.")
    if args.clients < 1 or args.minutes <= 0:
        raise SplatentError("--clients must be >= 1 and --minutes > 0.")
    # A shell starts background jobs (`cmd &`) with SIGINT ignored, and the viewer would inherit that and never
    # see the Ctrl+C that ends the soak: take SIGINT back (this process handles it, the viewer gets the default).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    run = (
        args.load_config if args.load_config is not None else quick_run(steps=args.train_steps, work_dir=args.work_dir)
    )
    log_path = args.work_dir / "server.log"
    server = Server(args=args, run=run, log_path=log_path)
    records = [ClientRecord(index=i) for i in range(args.clients)]
    browsers: list[HeadlessChromium] = []
    killed = [threading.Event() for _ in records]
    stop = threading.Event()
    memory: list[tuple[float, float, int]] = []
    exit_code, stop_seconds = None, None
    load_start = os.getloadavg()
    t0 = time.monotonic()
    try:
        url = server.wait_url(timeout=600)
        CONSOLE.print(f"viewer at {url} (pid {server.proc.pid}); starting {args.clients} clients")
        for _ in records:
            browser = HeadlessChromium(width=args.window[0], height=args.window[1])
            browser.call("Page.addScriptToEvaluateOnNewDocument", source=_COUNT_FRAMES_JS)
            browser.navigate(url)
            browsers.append(browser)
        t0 = time.monotonic()
        drivers = [
            threading.Thread(
                target=_drive,
                name=f"soak-client-{r.index}",
                daemon=True,
                kwargs={"browser": b, "record": r, "args": args, "stop": stop, "killed": k, "t0": t0},
            )
            for b, r, k in zip(browsers, records, killed)
        ]
        for d in drivers:
            d.start()
        duration = 60.0 * args.minutes
        kill_at = duration / 2 if args.kill_one and args.clients > 1 else None
        next_sample = 0.0
        while (now := time.monotonic() - t0) < duration:
            if kill_at is not None and now >= kill_at and records[-1].killed_at is None:
                killed[-1].set()
                records[-1].killed_at = round(now, 1)
                browsers[-1].kill()  # an abrupt end: no websocket close
                CONSOLE.print(f"{now:.0f} s: killed client {len(records) - 1}")
            if now >= next_sample:
                status = _proc_status(server.proc.pid)
                if status is None:
                    raise SplatentError(
                        f"the viewer exited during the soak (code {server.proc.poll()}); see {log_path}"
                    )
                memory.append((round(now, 1), round(status[0], 1), status[1]))
                for browser, record, k in zip(browsers, records, killed):
                    if not k.is_set() and (n := _frames(browser)) is not None:
                        record.frames.append((round(now, 1), n))
                        record.frames_received = n
                if not CONSOLE.is_interactive or len(memory) % 6 == 1:
                    CONSOLE.print(
                        f"{now:5.0f} s: server {status[0]:.0f} MB, {status[1]} threads; frames "
                        + " ".join(str(r.frames_received) for r in records)
                    )
                next_sample += args.sample_seconds
            time.sleep(0.2)
        stop.set()
        for d in drivers:
            d.join(timeout=30)
        end = time.monotonic() - t0
        for browser, record, k in zip(browsers, records, killed):
            if not k.is_set() and (n := _frames(browser)) is not None:
                record.frames.append((round(end, 1), n))
                record.frames_received = n
        status = _proc_status(server.proc.pid)
        if status is not None:
            memory.append((round(end, 1), round(status[0], 1), status[1]))
    finally:
        stop.set()
        for browser in browsers:
            browser.close()
        exit_code, stop_seconds = server.stop()

    log = log_path.read_text()
    kill_time = next((r.killed_at for r in records if r.killed_at is not None), None)
    elapsed = memory[-1][0] if memory else 0.0
    rss = [m[1] for m in memory]
    third = max(1, len(rss) // 3)
    summary = {
        "seconds": elapsed,
        "clients": args.clients,
        "frames_received": [r.frames_received for r in records],
        "frames_per_second": [round(r.frames_received / ((r.killed_at or elapsed) or 1.0), 2) for r in records],
        "killed_client": next((r.index for r in records if r.killed_at is not None), None),
        "rss_mb_min": min(rss, default=0.0),
        "rss_mb_max": max(rss, default=0.0),
        "rss_mb_first_third_mean": round(sum(rss[:third]) / third, 1) if rss else 0.0,
        "rss_mb_last_third_mean": round(sum(rss[-third:]) / third, 1) if rss else 0.0,
        "threads_first": memory[0][2] if memory else None,
        "threads_before_kill": next(
            (n for t, _, n in reversed(memory) if kill_time is not None and t < kill_time), None
        ),
        "threads_last": memory[-1][2] if memory else None,
        "server_render_errors": log.count("render failed"),
        "server_tracebacks": log.count("Traceback"),
        "server_disconnects_logged": len(re.findall(r"viewer client \d+ disconnected", log)),
        "server_exit_code": exit_code,
        "server_stop_seconds": round(stop_seconds, 1) if stop_seconds is not None else None,
        "client_errors": sum(len(r.errors) for r in records),
    }
    record = {
        "command": "python benchmarks/viewer_soak.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "load_average_1min": {"start": round(load_start[0], 2), "end": round(os.getloadavg()[0], 2)},
        "run": str(run),
        "viewer_command": " ".join(server.command[1:]),
        "args": json.loads(json.dumps(asdict(args), default=str)),
        "summary": summary,
        "server_samples": [{"t": t, "rss_mb": r, "threads": n} for t, r, n in memory],
        "clients": [asdict(r) for r in records],
        "server_log_tail": log.splitlines()[-20:],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.output, record)
    _print_table(record)
    return record


def _print_table(record: dict) -> None:
    s = record["summary"]
    table = Table(title=f"viewer soak: {s['clients']} clients, {s['seconds']:.0f} s")
    for col in ("client", "frames received", "frames/s", "killed at s", "driver errors"):
        table.add_column(col, justify="right")
    for c, fps in zip(record["clients"], s["frames_per_second"]):
        table.add_row(
            str(c["index"]),
            str(c["frames_received"]),
            f"{fps:.2f}",
            "" if c["killed_at"] is None else f"{c['killed_at']:.0f}",
            str(len(c["errors"])),
        )
    CONSOLE.print(table)
    CONSOLE.print(
        f"server RSS {s['rss_mb_min']:.0f}–{s['rss_mb_max']:.0f} MB (mean of the first third "
        f"{s['rss_mb_first_third_mean']:.0f} MB, last third {s['rss_mb_last_third_mean']:.0f} MB); threads "
        f"{s['threads_first']} at the start, {s['threads_before_kill']} before the kill, {s['threads_last']} at "
        f"the end; render errors {s['server_render_errors']}, tracebacks "
        f"{s['server_tracebacks']}, disconnects logged {s['server_disconnects_logged']}; server exit code "
        f"{s['server_exit_code']} after {s['server_stop_seconds']} s (Ctrl+C)",
        soft_wrap=True,
    )


def main(args: Args) -> dict:
    return soak(args)


if __name__ == "__main__":
    exit_on_error(main, tyro.cli(Args), interrupted="soak stopped; nothing written")
