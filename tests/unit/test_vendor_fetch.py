"""static/vendor/fetch.py: the tarball's URL, the sha512 integrity check before anything is
unpacked, only the listed files unpacked, and nothing fetched again when the stamp matches."""
import base64
import hashlib
import importlib.util
import io
import tarfile

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("vendor_fetch", ROOT / "static" / "vendor" / "fetch.py")
fetch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch)


def tarball(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def integrity(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


class Opener:
    def __init__(self, data):
        self.data, self.calls = data, []

    def __call__(self, url, timeout):
        self.calls.append(url)
        return io.BytesIO(self.data)


def test_pinned_packages_and_their_urls():
    assert fetch.tarball_url("@xterm/xterm", "6.0.0") == "https://registry.npmjs.org/@xterm/xterm/-/xterm-6.0.0.tgz"
    assert {p[1] for p in fetch.PACKAGES} == {"@xterm/xterm", "@xterm/addon-fit"}
    assert all(p[3].startswith("sha512-") for p in fetch.PACKAGES)


def test_fetch_checks_unpacks_only_the_listed_files_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "VENDOR", tmp_path)
    data = tarball({"lib/x.js": b"js", "css/x.css": b"css", "../../evil": b"no", "src/big.ts": b"ts"})
    opener = Opener(data)
    assert fetch.fetch("x", "@s/x", "1.0.0", integrity(data), ("lib/x.js", "css/x.css"), opener=opener) is True
    assert (tmp_path / "x/lib/x.js").read_bytes() == b"js"
    assert sorted(p.name for p in (tmp_path / "x").rglob("*") if p.is_file()) == [".integrity", "x.css", "x.js"]
    assert fetch.fetch("x", "@s/x", "1.0.0", integrity(data), ("lib/x.js", "css/x.css"), opener=opener) is False
    assert len(opener.calls) == 1


def test_a_tarball_that_does_not_match_its_integrity_is_not_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "VENDOR", tmp_path)
    data = tarball({"lib/x.js": b"js"})
    with pytest.raises(ValueError, match="integrity mismatch"):
        fetch.fetch("x", "@s/x", "1.0.0", integrity(b"other"), ("lib/x.js",), opener=Opener(data))
    assert not (tmp_path / "x").exists()
