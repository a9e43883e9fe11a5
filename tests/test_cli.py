import subprocess
import sys

from vidiff import __version__
from vidiff.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vidiff {__version__}"


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fit", "validate", "test", "predict", "demo", "sample", "scheme", "evaluate", "txt2img"):
        assert name in out
    assert "unavailable" not in out


def test_unknown_command_names_choices(capsys):
    assert main(["definitely-not-a-command"]) == 2
    err = capsys.readouterr().err
    assert "unknown command" in err and "fit" in err


def test_console_module_runs():
    out = subprocess.run([sys.executable, "-m", "vidiff", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"vidiff {__version__}"


def test_openmp_threads_sleep_unless_the_user_says_otherwise():
    import os

    code = "import os, vidiff; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"
