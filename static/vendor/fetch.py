#!/usr/bin/env python3
"""Fetch the browser console's JavaScript (xterm.js and its fit add-on) from the npm registry.

Pinned versions, each tarball checked against its sha512 ``integrity`` (as the registry and
package-lock files give it) before anything is unpacked; only the files the page loads are
unpacked, under ``static/vendor/<name>/``, which git ignores. Idempotent: a package whose stamp
matches is left alone. install.sh and tests/run.sh call it; no npm binary is needed.

    python3 static/vendor/fetch.py
"""
import base64
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
VENDOR = Path(__file__).resolve().parent
# (directory, npm package, version, sha512 integrity, files of the tarball to keep)
PACKAGES = (
    ("xterm", "@xterm/xterm", "6.0.0",
     "sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg==",
     ("lib/xterm.js", "css/xterm.css", "LICENSE", "package.json")),
    ("addon-fit", "@xterm/addon-fit", "0.11.0",
     "sha512-jYcgT6xtVYhnhgxh3QgYDnnNMYTcf8ElbxxFzX0IZo+vabQqSPAjC3c1wJrKB5E19VwQei89QCiZZP86DCPF7g==",
     ("lib/addon-fit.js", "LICENSE", "package.json")),
)
STAMP = ".integrity"
TIMEOUT = 60


def tarball_url(package, version):
    """``@scope/name`` 1.2.3 -> ``<registry>/@scope/name/-/name-1.2.3.tgz``."""
    return f"{REGISTRY}/{package}/-/{package.rsplit('/', 1)[-1]}-{version}.tgz"


def check_integrity(data, integrity):
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"unsupported integrity {integrity!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise ValueError(f"integrity mismatch: expected sha512-{expected}, got sha512-{actual}")


def unpack(data, files, target):
    """Only ``files`` (under the tarball's ``package/``) into ``target``, replaced as a whole."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            members = {member.name: member for member in archive.getmembers() if member.isfile()}
            for name in files:
                member = members.get(f"package/{name}")
                if member is None:
                    raise ValueError(f"{name} is not in the tarball")
                destination = tmp / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(archive.extractfile(member).read())
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fetch(directory, package, version, integrity, files, opener=urllib.request.urlopen):
    target = VENDOR / directory
    stamp = target / STAMP
    if stamp.is_file() and stamp.read_text().strip() == integrity and all((target / f).is_file() for f in files):
        return False
    url = tarball_url(package, version)
    with opener(url, timeout=TIMEOUT) as response:
        data = response.read()
    check_integrity(data, integrity)
    unpack(data, files, target)
    (target / STAMP).write_text(integrity + "\n")
    return True


def main():
    for directory, package, version, integrity, files in PACKAGES:
        try:
            fetched = fetch(directory, package, version, integrity, files)
        except (OSError, ValueError, tarfile.TarError) as exc:
            sys.exit(f"[vendor] {package}@{version}: {exc}")
        print(f"[vendor] {package}@{version}: {'fetched' if fetched else 'present'}")


if __name__ == "__main__":
    main()
