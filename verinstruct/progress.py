"""Feedback on long work, written once for every command (`verif score`, `check`, `data lint`, `eval`).

On a terminal (stderr is a TTY) a tqdm bar shows rows done, rows/s and the ETA. Anywhere else (CI logs, a
redirect) a tqdm bar would be a mess of carriage returns, so a plain line is printed at most every
``interval`` seconds instead (``VERINSTRUCT_PROGRESS_INTERVAL``, default 15; ``VERINSTRUCT_PROGRESS=0`` turns
both off). Both keep ticking between updates (elapsed time on the bar, a line per interval in a log), since
a batch can take minutes. Output meant for stdout goes through :meth:`Progress.echo` so it does not tear the bar.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import IO, Any

DEFAULT_INTERVAL = 15.0


#: C0 controls but tab and newline, DEL, C1 controls (``\x9b`` is a one-byte CSI), lone surrogates
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character a terminal would act on (ESC sequences, carriage returns, the
    bell, C1 controls) and every lone surrogate written as a visible escape (``\\x1b``, ``\\ud800``).

    Ids, names and exception texts come from other people's data and code: printed raw they can recolour,
    rewrite or clear the user's terminal, or crash the print with UnicodeEncodeError."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii")
                       if ord(m.group()) < 0xD800 else f"\\u{ord(m.group()):04x}", text)


def _env_interval() -> float:
    raw = os.environ.get("VERINSTRUCT_PROGRESS_INTERVAL", "")
    try:
        return max(0.0, float(raw)) if raw.strip() else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """``with Progress(total, "score") as p: ... p.update(n)``; a bar on a TTY, periodic lines otherwise."""

    def __init__(self, total: int | None, desc: str, *, unit: str = "rows", stream: IO[str] | None = None,
                 interval: float | None = None, enabled: bool | None = None) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = _env_interval() if interval is None else interval
        if enabled is None:
            enabled = os.environ.get("VERINSTRUCT_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")
        self.enabled = enabled
        self.n = 0
        self._start = time.monotonic()
        self._last = self._start
        self._bar: Any = None
        if enabled and _isatty(self.stream):
            from tqdm import tqdm

            # a terminal that reports no size (some ptys) would get a zero-width, invisible bar
            width: dict[str, Any] = {"dynamic_ncols": True} if _columns(self.stream) else {"ncols": 80, "nrows": 24}
            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=self.stream, leave=False, **width)
        # a heartbeat: work comes back in batches (a 64-row chunk may take minutes), so without it the bar's
        # elapsed time would freeze and a log would stay silent until the first batch is done
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        if enabled and (self._bar is not None or self.interval > 0):
            self._beat = threading.Thread(target=self._heartbeat, name=f"progress-{desc}", daemon=True)
            self._beat.start()

    # ---- context manager -------------------------------------------------------------------
    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- updates ---------------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n
            if self._bar is not None:
                self._bar.update(n)
                return
            if not self.enabled:
                return
            self._maybe_print(time.monotonic())

    def _maybe_print(self, now: float) -> None:
        if now - self._last >= self.interval:
            self._last = now
            print(self.line(now), file=self.stream, flush=True)

    def _heartbeat(self) -> None:
        tick = 1.0 if self._bar is not None else max(self.interval / 4, 0.25)
        while not self._stop.wait(tick):
            with self._lock:
                if self._bar is not None:
                    self._bar.refresh()
                else:
                    self._maybe_print(time.monotonic())

    def line(self, now: float | None = None) -> str:
        """``score: 64/135 rows (47%), 2.1 rows/s, elapsed 0:30, ETA 0:34``."""
        elapsed = (now if now is not None else time.monotonic()) - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        eta = ""
        if self.total is not None and rate > 0:
            eta = f", ETA {_fmt_seconds((self.total - self.n) / rate)}"
        return f"{self.desc}: {done} {self.unit}{pct}, {rate:.1f} {self.unit}/s, elapsed {_fmt_seconds(elapsed)}{eta}"

    def echo(self, msg: str, *, err: bool = False) -> None:
        """Print a line (stdout unless ``err``) without tearing the bar; control characters in it are escaped
        (:func:`terminal_safe`): lines carry ids and texts from the data."""
        out = sys.stderr if err else sys.stdout
        msg = terminal_safe(msg)
        with self._lock:
            if self._bar is not None:
                self._bar.write(msg, file=out)
            else:
                print(msg, file=out)

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0
