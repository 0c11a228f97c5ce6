"""A real S3-compatible server for the off-site store's tests: moto's server (requirements-dev.txt) in
a subprocess on 127.0.0.1, on a free port, one per test session (per pytest-xdist worker).

``s3_server``: no authentication (any key is taken), one bucket; yields the ``S3_*`` settings.
``s3_auth_server``: a second instance that checks credentials and permissions like AWS (moto's
IAM): an unknown key, a wrong secret, a user without any policy and a read-only one are refused as
a real store would refuse them.
"""
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time

import pytest

START_TIMEOUT = 20  # seconds for the server to accept connections
REGION = "us-east-1"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, log_path, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.05)
    with open(log_path, errors="replace") as handle:
        raise RuntimeError(f"moto's server did not listen on 127.0.0.1:{port} within {timeout} s:\n{handle.read()[-2000:]}")


@contextlib.contextmanager
def moto_server(environ=None, tls=None):
    """``http://127.0.0.1:PORT`` of a moto server started for the block, stopped after it;
    ``https://`` with ``tls=(certificate file, key file)``."""
    for _ in range(3):  # a port taken between free_port() and the server's bind: another one
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true", **(environ or {})}
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        if tls:
            command += ["-c", str(tls[0]), "-k", str(tls[1])]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            if wait_for_port(port, process, log.name):
                yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
                return
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            log.close()
            os.unlink(log.name)
    raise RuntimeError("moto's server did not start (3 tries)")


def boto3_client(service, endpoint, key="testing", secret="testing"):
    import boto3  # moto's dependency: the tests' admin calls, never the service's

    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id=key, aws_secret_access_key=secret)


@pytest.fixture(scope="session")
def s3_server():
    with moto_server() as endpoint:
        bucket = "incus-api-test"
        boto3_client("s3", endpoint).create_bucket(Bucket=bucket)
        yield {"S3_ENDPOINT": endpoint, "S3_BUCKET": bucket, "S3_ACCESS_KEY": "test-access-key",
               "S3_SECRET_KEY": "test-secret-" + secrets.token_hex(16), "S3_PREFIX": "incus-api-web/",
               "S3_REGION": REGION}


POLICIES = {
    "full": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
    "readonly": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"},
}


@pytest.fixture(scope="session")
def s3_auth_server():
    """``{"S3_ENDPOINT", "S3_BUCKET", "S3_REGION", "users": {"full"|"readonly"|"none": (key, secret)}}``."""
    users = ("full", "readonly", "none")
    # moto lets this many calls through unauthenticated (the set-up below), then checks every one.
    setup_calls = 1 + 2 * len(users) + len(POLICIES)
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": str(setup_calls)}) as endpoint:
        bucket = "incus-api-auth"
        boto3_client("s3", endpoint).create_bucket(Bucket=bucket)
        iam = boto3_client("iam", endpoint)
        credentials = {}
        for user in users:
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            credentials[user] = (key["AccessKeyId"], key["SecretAccessKey"])
            if user in POLICIES:
                iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [POLICIES[user]]}))
        yield {"S3_ENDPOINT": endpoint, "S3_BUCKET": bucket, "S3_REGION": REGION, "users": credentials}
