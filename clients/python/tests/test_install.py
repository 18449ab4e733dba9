"""pip installs the package into a fresh venv, offline (the build backend is
the standard library), and the installed copy works from outside the tree."""

import os
import subprocess
import sys

import pytest
from conftest import PKG_ROOT, REPO


def test_pip_install_into_a_venv(tmp_path):
    venv = tmp_path / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                       timeout=120)
    except subprocess.CalledProcessError as e:
        pytest.skip("no venv with pip here (Debian: apt-get install python3-venv): %s"
                    % e.stderr.decode(errors="replace")[-200:])
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_NO_INDEX"] = "1"  # nothing may come from a package index
    r = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", str(PKG_ROOT)],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(py), "-c", "import forq; print(forq.__file__, forq.__version__)"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    assert str(venv) in r.stdout and "0.1.0" in r.stdout
    # the Python proc: example runs on the installed package
    r = subprocess.run([str(py), str(REPO / "examples" / "proc_sum.py")],
                       input=b'TASK 5 1 15\n{"args":[2,40]}\n', capture_output=True, env=env,
                       cwd=str(tmp_path), timeout=60)
    assert r.returncode == 0 and r.stdout == b"RESULT 5 2\n42\n", r.stderr
