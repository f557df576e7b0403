"""The forked `digest` processes the suite uses (tests/support/processes.py) are real
processes: their own pid, environment, working directory and standard streams, a real
exit status, and signals that reach them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from .support.processes import run_digest, start_python


@pytest.mark.parametrize("name", ["missing.toml", os.fsdecode(b"bad-\xff-name.toml")])
def test_a_forked_digest_answers_like_the_command(tmp_path, name):
    args = ["--config", str(tmp_path / name), "sources"]
    forked = run_digest(args, capture_output=True)
    real = subprocess.run([sys.executable, "-m", "digest.cli", *args], capture_output=True, timeout=120)
    assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)
    assert forked.returncode == 2 and forked.stderr.startswith(b"Error: ")


@pytest.mark.parametrize("code", [
    "print('lost unless flushed'); import os, signal; os.kill(os.getpid(), signal.SIGKILL)",   # stdout buffered
    "import sys; print('\\udcff', file=sys.stderr); raise SystemExit(4)",                    # backslashreplace
    "import sys; print(repr(sys.stdin.read()))",                                              # surrogateescape
    "import atexit; atexit.register(print, 'bye'); raise KeyboardInterrupt",                  # -SIGINT, atexit
])
def test_its_streams_and_exits_are_python_s(code):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    forked = start_python(code, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = forked.communicate(b"caf\xe9", timeout=60)
    real = subprocess.run([sys.executable, "-c", code], env=env, input=b"caf\xe9", capture_output=True, timeout=60)
    assert (forked.returncode, out) == (real.returncode, real.stdout)
    assert err.splitlines()[-1:] == real.stderr.splitlines()[-1:]


def test_an_option_it_does_not_honour_is_refused():
    with pytest.raises(TypeError):
        start_python("pass", start_new_session=True)


def test_it_has_its_own_pid_environment_folder_and_streams(tmp_path):
    code = "import os, sys; print(os.getpid(), os.getppid(), os.environ.get('ONLY_THERE'), os.getcwd()); " \
           "print(sys.stdin.read().upper(), file=sys.stderr)"
    process = start_python(code, env={"ONLY_THERE": "yes"}, cwd=tmp_path, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate("héllo", timeout=60)
    pid, parent, seen, folder = out.split()
    assert int(pid) == process.pid and process.pid not in (os.getpid(), int(parent))
    assert (seen, folder, err.strip(), process.returncode) == ("yes", str(tmp_path), "HÉLLO", 0)
    assert "ONLY_THERE" not in os.environ


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_signal_reaches_it_and_its_status_says_so(sig):
    process = start_python("import time; print('up', flush=True); time.sleep(60)", stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "up\n"
    os.kill(process.pid, 0)                              # alive, as a process of this machine
    process.send_signal(sig)
    assert process.wait(timeout=30) == -sig
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)


def test_exit_codes_and_a_time_out_kill_it():
    assert start_python("import sys; sys.exit(3)").wait(timeout=60) == 3
    with pytest.raises(subprocess.TimeoutExpired):
        run_digest([], code="import time; time.sleep(60)", timeout=1)
