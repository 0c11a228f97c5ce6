"""The service's TLS certificate on disk: a self-signed one made (ECDSA P-256), a certificate read
back, its fingerprints. No Flask, no Incus API.

``cryptography`` (already a dependency of pylxd, pinned in requirements.txt) writes and reads the
files: the key never passes through a command line or a temporary file others could read.
"""
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Ten years: a billing system pins this certificate's fingerprint; a new one means a new pin.
VALID_DAYS = 3650


def make_self_signed(cert_path, key_path, names):
    """Write a new key (mode 0600) and a self-signed certificate for ``names`` (host names and IP
    addresses, the first one its common name), each file replaced in one rename."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write(Path(key_path), key_pem, 0o600)
    _write(Path(cert_path), certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _general_name(name):
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write(path, data, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(partial, mode)
    os.replace(partial, path)


def load(cert_path):
    """The first certificate of a PEM file."""
    return x509.load_pem_x509_certificate(Path(cert_path).read_bytes())


def fingerprint(certificate):
    """SHA-256 of the certificate (DER), as browsers and ``openssl x509 -fingerprint`` show it."""
    digest = certificate.fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def public_key_pin(certificate):
    """cURL's pinned public key (``--pinnedpubkey``, ``CURLOPT_PINNEDPUBLICKEY``): ``sha256//`` and
    the base64 SHA-256 of the public key (it stays when the certificate is renewed with that key)."""
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def names_of(certificate):
    """The names (DNS and IP) the certificate is valid for."""
    try:
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(value) for value in alternative.get_values_for_type(x509.DNSName)] + \
        [str(value) for value in alternative.get_values_for_type(x509.IPAddress)]


def host_name():
    return socket.gethostname()


def host_ipv4_addresses():
    """Every IPv4 address on the host's interfaces (``ip -4 addr``), loopback included."""
    try:
        found = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, timeout=5,
                               check=True).stdout
        interfaces = json.loads(found)
    except (OSError, subprocess.SubprocessError, ValueError):
        return ["127.0.0.1"]
    addresses = []
    for interface in interfaces:
        for info in interface.get("addr_info", []):
            if info.get("family") == "inet" and info.get("local") and info["local"] not in addresses:
                addresses.append(info["local"])
    return addresses or ["127.0.0.1"]
