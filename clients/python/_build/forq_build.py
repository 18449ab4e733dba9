"""A PEP 517 build backend in the standard library alone.

forq has no dependencies, and building it needs none either: pip installs it
offline, with no setuptools or wheel to fetch (pyproject.toml points here
with backend-path). It builds a pure-Python wheel of the forq/ package, an
sdist, and an editable wheel (a .pth file that points at this checkout).
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "forq"


def _project():
    """[project] name, version, description, requires-python from pyproject.toml."""
    path = os.path.join(ROOT, "pyproject.toml")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        import tomllib

        return tomllib.loads(raw.decode("utf-8"))["project"]
    except ImportError:  # Python < 3.11: the few plain string keys we need
        text = raw.decode("utf-8")
        section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
        return dict(re.findall(r'^([A-Za-z-]+)\s*=\s*"([^"]*)"\s*$', section, re.M))


def _metadata(p):
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % p["name"],
        "Version: %s" % p["version"],
        "Summary: %s" % p.get("description", ""),
    ]
    if p.get("requires-python"):
        lines.append("Requires-Python: %s" % p["requires-python"])
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _sources():
    """(archive name, path) of every file of the package, sorted."""
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for d, dirs, files in os.walk(base):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(d, f)
            out.append((os.path.relpath(path, ROOT).replace(os.sep, "/"), path))
    return out


def _digest(data):
    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "sha256=" + h


def _wheel(wheel_directory, files):
    """Writes a py3-none-any wheel holding files [(name, bytes)] plus its
    dist-info; returns its file name."""
    p = _project()
    name, version = p["name"].replace("-", "_"), p["version"]
    dist_info = "%s-%s.dist-info" % (name, version)
    files = list(files)
    files.append((dist_info + "/METADATA", _metadata(p).encode("utf-8")))
    files.append((dist_info + "/WHEEL", (
        "Wheel-Version: 1.0\nGenerator: forq_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()))
    record = ["%s,%s,%d" % (n, _digest(b), len(b)) for n, b in files]
    record.append(dist_info + "/RECORD,,")
    files.append((dist_info + "/RECORD", ("\n".join(record) + "\n").encode()))
    filename = "%s-%s-py3-none-any.whl" % (name, version)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in files:
            info = zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, b)
    return filename


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- PEP 517 ----


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, [(n, _read(p)) for n, p in _sources()])


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel whose .pth puts this checkout on sys.path."""
    return _wheel(wheel_directory, [("_forq_editable.pth", (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = "%s-%s" % (p["name"], p["version"])
    filename = base + ".tar.gz"
    names = [(n, path) for n, path in _sources()]
    for extra in ("pyproject.toml", "README.md", "_build/forq_build.py"):
        if os.path.exists(os.path.join(ROOT, extra)):
            names.append((extra, os.path.join(ROOT, extra)))
    tests = os.path.join(ROOT, "tests")
    if os.path.isdir(tests):
        for f in sorted(os.listdir(tests)):
            if f.endswith(".py"):
                names.append(("tests/" + f, os.path.join(tests, f)))
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as t:
        def add(name, data):
            info = tarfile.TarInfo("%s/%s" % (base, name))
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))

        for n, path in names:
            add(n, _read(path))
        add("PKG-INFO", _metadata(p).encode("utf-8"))
    return filename
