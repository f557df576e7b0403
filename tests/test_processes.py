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


def test_a_forked_digest_answers_like_the_command(tmp_path):
    forked = run_digest(["--config", str(tmp_path / "missing.toml"), "sources"], capture_output=True, text=True)
    real = subprocess.run([sys.executable, "-m", "digest.cli", "--config", str(tmp_path / "missing.toml"),
                           "sources"], capture_output=True, text=True, timeout=120)
    assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)
    assert forked.returncode == 2 and forked.stderr.startswith("Error: ")


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
