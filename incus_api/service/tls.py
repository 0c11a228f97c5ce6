"""HTTPS for the service: which certificate it serves, one made when there is none, and what a
client pins.

- ``TLS`` on (the default) and ``TLS_CERT``/``TLS_KEY`` set: that certificate (a real one: the
  answers carry HSTS).
- ``TLS`` on, neither set: a self-signed certificate under the instance folder (``tls/cert.pem``,
  ``tls/key.pem``), made by ``init_db.py`` or at the service's start when missing, for
  ``PUBLIC_HOST``, the host name and the host's IPv4 addresses. Clients trust it with
  ``--cacert`` or pin its fingerprint; no HSTS (a browser could then never be told to go on).
- ``TLS=off``: plain HTTP, for a TLS proxy on the same host (its certificate is the real one).
"""
from dataclasses import dataclass
from pathlib import Path

from ..config import SettingError
from ..host import certificate as certificates

SELF_SIGNED_DIR = "tls"


class TlsError(SettingError):
    """The configured certificate cannot be served (missing, unreadable, not a pair): the service
    does not start."""


@dataclass(frozen=True)
class TlsFiles:
    cert: str | None
    key: str | None
    self_signed: bool

    @property
    def enabled(self):
        return self.cert is not None


def tls_files(config, instance_path, make=True):
    """The certificate and key the service serves (see the module's docstring); ``make``: make the
    self-signed pair when it is missing. Raises ``TlsError`` for a configured pair that is not
    there or not readable."""
    if not config.get("TLS", True):
        return TlsFiles(None, None, False)
    cert, key = (config.get("TLS_CERT") or "").strip(), (config.get("TLS_KEY") or "").strip()
    if cert or key:
        if not (cert and key):
            raise TlsError("TLS_CERT and TLS_KEY go together: set both (PEM files), or neither for a self-signed certificate")
        for setting, path in (("TLS_CERT", cert), ("TLS_KEY", key)):
            if not Path(path).is_file():
                raise TlsError(f"{setting}={path}: no such file")
        _readable(cert)
        return TlsFiles(cert, key, False)
    folder = Path(instance_path) / SELF_SIGNED_DIR
    files = TlsFiles(str(folder / "cert.pem"), str(folder / "key.pem"), True)
    if make and not (Path(files.cert).is_file() and Path(files.key).is_file()):
        certificates.make_self_signed(files.cert, files.key, certificate_names(config))
    return files


def _readable(cert):
    try:
        return certificates.load(cert)
    except (OSError, ValueError) as exc:
        raise TlsError(f"TLS_CERT={cert}: not a PEM certificate ({exc})") from None


def certificate_names(config):
    """What a self-signed certificate is made for: ``PUBLIC_HOST``, the host name, the host's IPv4
    addresses (loopback and the bridge's included: containers reach the service there)."""
    names = []
    for name in [(config.get("PUBLIC_HOST") or "").strip(), certificates.host_name(), "localhost",
                 *certificates.host_ipv4_addresses()]:
        if name and name not in names:
            names.append(name)
    return names


def describe(files):
    """What clients pin and trust: ``{"fingerprint", "pin", "names", "not_after", "self_signed",
    "path"}``, or None when the service serves plain HTTP (or the file cannot be read)."""
    if not files.enabled:
        return None
    try:
        certificate = _readable(files.cert)
    except TlsError:
        return None
    return {
        "fingerprint": certificates.fingerprint(certificate),
        "pin": certificates.public_key_pin(certificate),
        "names": certificates.names_of(certificate),
        "not_after": certificate.not_valid_after_utc.date().isoformat(),
        "self_signed": files.self_signed,
        "path": files.cert,
    }


def served_certificate(config, instance_path):
    """``describe`` of what the service serves (nothing is made here); None under ``TLS=off``;
    ``{"missing": path}`` when the certificate is not there (made at the service's next start)."""
    try:
        files = tls_files(config, instance_path, make=False)
    except TlsError as exc:
        return {"missing": str(exc)}
    if not files.enabled:
        return None
    return describe(files) or {"missing": files.cert}


def certificate_pem(config, instance_path):
    """The served certificate (PEM, public), for clients to trust it; None when there is none."""
    facts = served_certificate(config, instance_path)
    return None if facts is None or "missing" in facts else Path(facts["path"]).read_bytes()


def fingerprint_lines(files):
    """What ``init_db.py``, ``install.sh`` and the service's log print each time."""
    facts = describe(files)
    if facts is None:
        return ["TLS: off (plain HTTP: put a TLS proxy in front, see the README)"]
    kind = "self-signed" if facts["self_signed"] else "from TLS_CERT"
    return [
        f"TLS SHA-256 fingerprint: {facts['fingerprint']}",
        f"TLS public key pin (curl --pinnedpubkey): {facts['pin']}",
        f"TLS certificate: {facts['path']} ({kind}; names: {', '.join(facts['names'])}; until {facts['not_after']})",
    ]


def sends_hsts(config):
    """HSTS only where the certificate is a real one: ``TLS_CERT``, or a proxy's (``TLS=off``)."""
    return not config.get("TLS", True) or bool((config.get("TLS_CERT") or "").strip())
