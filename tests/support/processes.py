"""`digest` as a real process, forked from a parent that has imported it already.

Starting `python -m digest.cli` costs an interpreter and the import of the whole library
(seconds on a busy 2-core machine) before the command does anything. A forkserver
(multiprocessing's, with `digest.cli` preloaded) forks a process that already has it:
the child is still a real process of its own, with its own pid, file descriptors,
environment and working directory; SIGKILL and SIGTERM reach it as they reach any
process, and its exit status is the command's. `run_digest` and `start_digest` take the
arguments `subprocess.run` and `subprocess.Popen` take and give back what they give. Only
its clock may be set (`clock=`: the moment it starts at, running on at the real pace from
there), so that a scheduler reaches its cron minute in seconds.

Its streams are made as Python makes them (stdout buffered unless a terminal or
PYTHONUNBUFFERED, stderr by lines with backslashreplace, stdin with surrogateescape), its
atexit functions run, Ctrl-C ends it by SIGINT; tests/test_processes.py holds it to a
fresh interpreter. What it cannot give: what the interpreter and digest read once, at
start or import, it has as the server read them (PYTHON* variables, the locale, rich's
look at the terminal); an option of Popen it does not honour is refused (TypeError).
Where that matters a test starts a real interpreter: the installed command itself
(tests/test_wheel.py), the deploy files' commands (tests/test_deploy.py).
"""

from __future__ import annotations

import atexit
import io
import logging
import multiprocessing
import os
import pkgutil
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime
from multiprocessing import reduction, spawn
from pathlib import Path
from typing import IO, Any

import digest.actions

PIPE, DEVNULL, STDOUT = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT
_CONTEXT = multiprocessing.get_context("forkserver")
# What a command may import: the CLI, every action (digest.actions imports them on first
# use), the scheduler and the web app; a forked child has them all already.
_ACTIONS = [f"digest.actions.{m.name}" for m in pkgutil.iter_modules(digest.actions.__path__)]
_CONTEXT.set_forkserver_preload(["digest.cli", *_ACTIONS, "digest.schedule", "digest.web", __name__])


class _Fd:
    """A file descriptor handed to the child with the process (SCM_RIGHTS, through the
    forkserver's socket): pickled only while the process is being started."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return _detach, (reduction.DupFd(self.fd),)


def _detach(duplicate: Any) -> int:
    return duplicate.detach()


def _child(argv: list[str], env: dict[str, str], cwd: str, fds: list[int], code: str | None,
           clock: datetime | None) -> None:
    """In the forked child: become `digest ARGV` (or `python -c CODE`) with these standard
    streams, its clock set to `clock` (and running on from there) if given, then run it."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _standard_streams(unbuffered=bool(env.get("PYTHONUNBUFFERED")))
    atexit._clear()                       # the server's own; the command's run when it ends, as Python runs them
    if clock is not None:
        import time_machine
        time_machine.travel(clock, tick=True).start()
    sys.argv = ["digest", *argv] if code is None else ["-c"]
    try:
        _run(code)
    except KeyboardInterrupt:             # as Python ends on Ctrl-C: the traceback, then killed by SIGINT
        traceback.print_exc()
        _at_exit()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    finally:
        _at_exit()


def _run(code: str | None) -> None:
    if code is not None:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
        return
    from digest.cli import main
    main()


def _at_exit() -> None:
    """What Python does as it ends: the atexit functions, logging shut down, stdio flushed."""
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()


def _standard_streams(unbuffered: bool) -> None:
    """sys.stdin, stdout and stderr as Python makes them for a process whose streams are
    these descriptors: stdout buffered unless a terminal, stderr by lines with
    backslashreplace, stdin with surrogateescape (PYTHONUNBUFFERED: written through)."""
    def stream(fd: int, mode: str, errors: str, lines: bool) -> io.TextIOWrapper:
        raw = open(fd, mode + "b", buffering=0 if unbuffered and mode == "w" else -1, closefd=False)
        return io.TextIOWrapper(raw, encoding="utf-8", errors=errors, line_buffering=lines,
                                write_through=unbuffered and mode == "w")
    sys.stdin = stream(0, "r", "surrogateescape", False)
    sys.stdout = stream(1, "w", "strict", os.isatty(1))
    sys.stderr = stream(2, "w", "backslashreplace", True)


class DigestProcess:
    """A `digest` process, with the attributes and methods of `subprocess.Popen` that tests use."""

    def __init__(self, argv: Sequence[str | Path], *, stdin: Any = None, stdout: Any = None, stderr: Any = None,
                 env: Mapping[str, str] | None = None, cwd: str | Path | None = None, text: bool = False,
                 code: str | None = None, clock: datetime | None = None) -> None:
        self.args = [str(a) for a in argv]
        self.text = text
        self.returncode: int | None = None
        self._parent_ends: list[int] = []
        child_ends = [self._end(stdin, 0, read=True), self._end(stdout, 1)]
        child_ends.append(os.dup(child_ends[1]) if stderr == STDOUT else self._end(stderr, 2))
        self.stdin, self.stdout, self.stderr = self._streams(stdin, stdout, stderr)
        self._process = _CONTEXT.Process(target=_child, args=(
            self.args, dict(os.environ if env is None else env), str(cwd or os.getcwd()),
            [_Fd(fd) for fd in child_ends], code, clock))
        try:
            _start(self._process)
        finally:
            for fd in child_ends:
                os.close(fd)
        self.pid = self._process.pid

    def _end(self, spec: Any, standard: int, read: bool = False) -> int:
        """The child's end of one standard stream (a new descriptor, closed here once sent)."""
        if spec == PIPE:
            reader, writer = os.pipe()
            self._parent_ends.append(writer if read else reader)
            return reader if read else writer
        if spec == DEVNULL:
            return os.open(os.devnull, os.O_RDONLY if read else os.O_WRONLY)
        if spec is None:
            return os.dup(standard)
        return os.dup(spec if isinstance(spec, int) else spec.fileno())

    def _streams(self, *specs: Any) -> list[IO[Any] | None]:
        ends = iter(self._parent_ends)
        modes = ("w", "r", "r")
        return [_open(next(ends), mode, self.text) if spec == PIPE else None
                for spec, mode in zip(specs, modes, strict=True)]

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, input: str | bytes | None = None, timeout: float | None = None) -> tuple[Any, Any]:
        readers = {name: _Reader(stream) for name, stream in (("out", self.stdout), ("err", self.stderr)) if stream}
        if self.stdin is not None:
            threading.Thread(target=_feed, args=(self.stdin, input), daemon=True).start()
        self.wait(timeout)
        return tuple(readers[n].result() if n in readers else None for n in ("out", "err"))  # type: ignore[return-value]

    def __enter__(self) -> DigestProcess:
        return self

    def __exit__(self, *_: object) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


_STARTING = threading.Lock()


def _start(process: multiprocessing.process.BaseProcess) -> None:
    """Start it without the forkserver running the test runner's main module again in the
    child (multiprocessing's preparation for `spawn`; `digest.cli` is all the child needs)."""
    original = spawn.get_preparation_data

    def without_main(name: str) -> dict[str, Any]:
        return {k: v for k, v in original(name).items() if not k.startswith("init_main")}
    with _STARTING:
        spawn.get_preparation_data = without_main
        try:
            process.start()
        finally:
            spawn.get_preparation_data = original


class _Reader(threading.Thread):
    """Reads one pipe to its end, so that a child writing a lot never blocks on it."""

    def __init__(self, stream: IO[Any]) -> None:
        super().__init__(daemon=True)
        self.stream, self.data = stream, None
        self.start()

    def run(self) -> None:
        self.data = self.stream.read()

    def result(self) -> Any:
        self.join()
        return self.data


def _feed(stdin: IO[Any], data: str | bytes | None) -> None:
    """Write what the child is to read, then close its input (it may have ended first)."""
    try:
        if data:
            stdin.write(data)
        stdin.close()
    except BrokenPipeError:
        pass


def _open(fd: int, mode: str, text: bool) -> IO[Any]:
    return open(fd, mode, encoding="utf-8") if text else open(fd, mode + "b")


def start_digest(args: Sequence[str | Path], **options: Any) -> DigestProcess:
    """`subprocess.Popen([sys.executable, "-m", "digest.cli", *args], **options)`, forked."""
    return DigestProcess(args, **options)


def start_python(code: str, **options: Any) -> DigestProcess:
    """`subprocess.Popen([sys.executable, "-c", code], **options)`, forked (digest imported)."""
    return DigestProcess([], code=code, **options)


def run_digest(args: Sequence[str | Path], *, input: str | bytes | None = None, timeout: float | None = None,
               capture_output: bool = False, check: bool = False, **options: Any) -> subprocess.CompletedProcess:
    """`subprocess.run([sys.executable, "-m", "digest.cli", *args], ...)`, forked; a time-out
    kills the process, as subprocess.run does."""
    if capture_output:
        options.update(stdout=PIPE, stderr=PIPE)
    if input is not None:
        options["stdin"] = PIPE
    with DigestProcess(args, **options) as process:
        try:
            out, err = process.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    completed = subprocess.CompletedProcess(process.args, process.returncode or 0, out, err)
    if check:
        completed.check_returncode()
    return completed
