"""The off-site copies of the backups (issue 21, point 3): one S3-compatible bucket (MinIO, R2, B2,
Ceph, AWS), objects named ``S3_PREFIX`` + the backup's file name. No Flask, no service, no store:
files in, files out.

The client is MinIO's Python SDK (``minio``, pinned in requirements.txt, where the choice is
explained), imported the first time the store is used: a service without ``S3_ENDPOINT`` never
loads it, one with it only once a backup is copied or checked. It speaks path-style to every host
but AWS's own, http:// or https://; https is checked against the system's CAs (``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` point elsewhere, as for any OpenSSL client). Connecting gives up after
``CONNECT_TIMEOUT`` seconds, a silent store after ``READ_TIMEOUT``.

Memory is bounded whatever the file: an upload holds one part (``PART_SIZE``, more only past
10,000 parts, i.e. 78 GiB) at a time, a download a 1 MiB chunk.

Every failure is an ``OffsiteError`` (502) whose message names the endpoint and the bucket and says
what to fix; an object that is not there is a ``NotFound``. The secret key appears in no message,
log line or repr.
"""
import io
import logging
import os
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

from .config import parse_s3_settings
from .exceptions import NotFound, OffsiteError
from .i18n import N_

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # S3's least is 5 MiB; the SDK holds a part (and its hash) in memory
MAX_PARTS = 10_000  # S3's most parts in one multipart upload
CHUNK = MIB  # a download's read size
SHA256_META = "sha256"  # x-amz-meta-sha256
CHECK_OBJECT = ".incus-api-web-check"  # written, read and removed by check(), under the prefix
# The S3 error codes that mean: these credentials are not the store's.
CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                    "AuthorizationHeaderMalformed", "InvalidSecurity", "InvalidClientTokenId")
DENIED_CODES = ("AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden")


class _Secret:
    """The secret key, kept out of reprs, tracebacks' locals and logs."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return "'***'"

    __str__ = __repr__


class S3Store:
    """One bucket of an S3-compatible store, seen through ``prefix``. Keys given to and answered by
    the methods are names under the prefix (``web1-20261207-030000.tar``); the object is
    ``prefix + key``. Safe to share between threads."""

    def __init__(self, endpoint, bucket, access_key, secret_key, prefix="incus-api-web/", region="us-east-1",
                 part_size=PART_SIZE):
        if part_size < 5 * MIB:
            raise ValueError("part_size: S3 takes parts of 5 MiB or more")
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.part_size = part_size
        self._access_key = access_key
        self._secret = _Secret(secret_key)
        self._client_lock = threading.Lock()
        self._minio = None

    @classmethod
    def from_config(cls, config):
        """The store of the ``S3_*`` settings of ``config`` (a dict-like), or None when
        ``S3_ENDPOINT`` and the other three are empty. A store half set up, or a setting that cannot
        be used, is a ``config.SettingError`` (its message names the keys, never the secret)."""
        values = parse_s3_settings(config)
        if not values["S3_ENDPOINT"]:
            return None
        return cls(values["S3_ENDPOINT"], values["S3_BUCKET"], values["S3_ACCESS_KEY"], values["S3_SECRET_KEY"],
                   prefix=values["S3_PREFIX"], region=values["S3_REGION"])

    def __repr__(self):
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def key_of(self, key):
        """The object's name in the bucket for ``key``."""
        return self.prefix + key

    # -- the operations ---------------------------------------------------------------------------

    def put(self, path, key, sha256):
        """Upload the file at ``path`` as ``key`` with its SHA-256 (hex) as the object's metadata
        ``sha256``, in parts past ``part_size``; then the stored object's size is read back (HEAD)
        and must be the file's. On any failure the upload (its parts, or the object it made) is
        removed and the error raised: the store never keeps a copy that was not checked."""
        size = os.path.getsize(path)
        name = self.key_of(key)
        client = self._client()
        try:
            with self._failing("upload", key):
                client.fput_object(self.bucket, name, path, metadata={SHA256_META: sha256},
                                   part_size=self._part_size(size), num_parallel_uploads=1)
                stored = client.stat_object(self.bucket, name)
            if stored.size != size:
                raise OffsiteError(N_("The S3 store {endpoint} (bucket {bucket}) failed: {reason}"),
                                   endpoint=self.endpoint, bucket=self.bucket,
                                   reason=f"it kept {stored.size} bytes of {key}, the file has {size}")
        except BaseException:
            self._discard(name, sha256)
            raise
        log.info("uploaded %s (%d bytes) to %s", name, size, self)

    def get(self, key, path):
        """Download ``key`` to ``path``: written to ``path + '.part'``, flushed to the disk, then
        renamed (an interrupted download leaves no ``path``). ``{"size", "sha256"}``: the bytes
        written and the object's ``sha256`` metadata (None when it has none); checking the file
        against it is the caller's."""
        name = self.key_of(key)
        client = self._client()
        partial = f"{path}.part"
        response = None
        try:
            with self._failing("download", key):
                response = client.get_object(self.bucket, name)
                size = int(response.headers.get("content-length", -1))
                sha256 = response.headers.get(f"x-amz-meta-{SHA256_META}") or None
                written = 0
                with open(partial, "wb") as out:
                    for chunk in response.stream(CHUNK, decode_content=False):
                        out.write(chunk)
                        written += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            if size >= 0 and written != size:
                raise OffsiteError(N_("The S3 store {endpoint} (bucket {bucket}) failed: {reason}"),
                                   endpoint=self.endpoint, bucket=self.bucket,
                                   reason=f"the download of {key} ended after {written} of {size} bytes")
            os.replace(partial, path)
            _fsync_directory(os.path.dirname(os.path.abspath(path)))
        except BaseException:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        return {"size": written, "sha256": sha256}

    def delete(self, key):
        """Remove ``key`` (nothing to do when it is not there)."""
        with self._failing("delete", key):
            self._client().remove_object(self.bucket, self.key_of(key))

    def head(self, key):
        """``{"key", "size", "modified", "sha256"}`` of ``key``, or None when it is not there."""
        client = self._client()
        with self._failing("read", key):
            try:
                stat = client.stat_object(self.bucket, self.key_of(key))
            except Exception as exc:
                if getattr(exc, "code", None) != "NoSuchKey":
                    raise
                stat = None
            if stat is None and not client.bucket_exists(self.bucket):  # a HEAD's 404 says not which is missing
                raise self._no_bucket()
        if stat is None:
            return None
        return self._entry(key, stat.size, stat.last_modified, stat.metadata.get(f"x-amz-meta-{SHA256_META}"))

    def list(self, under="", with_sha256=True):
        """Every object under the prefix (+ ``under``), as ``head`` answers them, sorted by key; all
        pages of the listing. The SHA-256 is read with one HEAD per object (a listing does not carry
        metadata): ``with_sha256=False`` leaves it None and makes one request per 1,000 objects."""
        client = self._client()
        entries = []
        with self._failing("list", under or self.prefix):
            for item in client.list_objects(self.bucket, prefix=self.prefix + under, recursive=True):
                key = item.object_name[len(self.prefix):]
                if key == CHECK_OBJECT or item.is_dir:
                    continue
                sha256 = None
                if with_sha256:
                    try:
                        stat = client.stat_object(self.bucket, item.object_name)
                    except Exception as exc:
                        if getattr(exc, "code", None) == "NoSuchKey":
                            continue  # removed since the listing
                        raise
                    sha256 = stat.metadata.get(f"x-amz-meta-{SHA256_META}")
                entries.append(self._entry(key, item.size, item.last_modified, sha256))
        return sorted(entries, key=lambda entry: entry["key"])

    def check(self):
        """Nothing when the store can be used: reached, the credentials accepted, the bucket there,
        and listing, writing, reading and removing allowed (a small object under the prefix is
        written and removed). Else an ``OffsiteError`` that says which, naming endpoint and bucket."""
        client = self._client()
        name = self.key_of(CHECK_OBJECT)
        with self._failing("list", self.prefix or "/"):
            next(iter(client.list_objects(self.bucket, prefix=self.prefix)), None)
        with self._failing("write", CHECK_OBJECT):
            client.put_object(self.bucket, name, io.BytesIO(b"incus-api-web\n"), 14)
        with self._failing("read", CHECK_OBJECT):
            client.stat_object(self.bucket, name)
        with self._failing("delete", CHECK_OBJECT):
            client.remove_object(self.bucket, name)

    # -- inside -----------------------------------------------------------------------------------

    def _client(self):
        with self._client_lock:
            if self._minio is None:
                import urllib3
                from minio import Minio

                url = urlsplit(self.endpoint)
                secure = url.scheme == "https"
                http = urllib3.PoolManager(
                    timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
                    maxsize=4,
                    # The system's CAs, or SSL_CERT_FILE / SSL_CERT_DIR's (OpenSSL reads them).
                    cert_reqs="CERT_REQUIRED",
                    # A refused or silent connection is told at once; a 5xx or a dropped answer is
                    # tried again, twice at most.
                    retries=urllib3.Retry(total=2, connect=0, read=1, backoff_factor=0.5,
                                          status_forcelist=(500, 502, 503, 504), raise_on_status=False),
                )
                self._minio = Minio(url.netloc, access_key=self._access_key, secret_key=self._secret.value,
                                    secure=secure, region=self.region, http_client=http)
            return self._minio

    def _part_size(self, size):
        """``part_size``, or the least whole MiB that keeps a file of ``size`` within S3's 10,000 parts."""
        needed = -(-size // MAX_PARTS)
        return max(self.part_size, -(-needed // MIB) * MIB)

    def _discard(self, name, sha256):
        """After a failed upload of ``name``: its unfinished multipart uploads aborted, and the object
        removed when it is this upload's (its ``sha256``); errors here are logged, not raised (the
        upload's own error is the one the caller needs)."""
        client = self._minio
        if client is None:
            return
        try:
            uploads = client._list_multipart_uploads(self.bucket, prefix=name).uploads  # not in the public API
            for upload in uploads:
                if upload.object_name == name:
                    client._abort_multipart_upload(self.bucket, name, upload.upload_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: could not abort the unfinished upload of %s: %s", self, name, self._scrub(exc))
        try:
            stat = client.stat_object(self.bucket, name)
            if stat.metadata.get(f"x-amz-meta-{SHA256_META}") == sha256:
                client.remove_object(self.bucket, name)
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "code", None) != "NoSuchKey":
                log.warning("%s: could not remove the failed upload %s: %s", self, name, self._scrub(exc))

    @staticmethod
    def _entry(key, size, modified, sha256):
        return {"key": key, "size": size,
                "modified": modified.strftime("%Y-%m-%dT%H:%M:%SZ") if modified else None,
                "sha256": sha256 or None}

    def _scrub(self, text):
        text = str(text)
        return text.replace(self._secret.value, "***") if self._secret.value else text

    def _no_bucket(self):
        return OffsiteError(N_("The bucket {bucket} does not exist on the S3 store {endpoint}"), endpoint=self.endpoint,
                            bucket=self.bucket)

    @contextmanager
    def _failing(self, action, key):
        """The SDK's and the network's errors of ``action`` on ``key`` as ``OffsiteError`` (or
        ``NotFound`` for a missing object), in words a person can act on."""
        import urllib3.exceptions
        from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

        where = {"endpoint": self.endpoint, "bucket": self.bucket}
        try:
            yield
        except OffsiteError:
            raise
        except S3Error as exc:
            code = exc.code or ""
            reason = self._scrub(f"{action} {key}: {code}: {exc.message or ''}".rstrip(": "))
            if code == "NoSuchBucket":
                raise self._no_bucket() from None
            if code in CREDENTIAL_CODES:
                raise OffsiteError(N_("The S3 store {endpoint} refused the access key for bucket {bucket}: check "
                                      "S3_ACCESS_KEY and S3_SECRET_KEY ({reason})"), reason=reason, **where) from None
            if code in DENIED_CODES:
                raise OffsiteError(N_("The access key may not do this in bucket {bucket} on the S3 store {endpoint}: "
                                      "{reason}"), reason=reason, **where) from None
            if code == "NoSuchKey":
                raise NotFound(N_("{key} is not in bucket {bucket} on the S3 store {endpoint}"), key=key,
                               **where) from None
            raise OffsiteError(N_("The S3 store {endpoint} (bucket {bucket}) failed: {reason}"), reason=reason,
                               **where) from None
        except (ServerError, InvalidResponseError, MinioException) as exc:
            status = getattr(exc, "status_code", None) or getattr(exc, "_code", None)
            if status in (401, 403):
                raise OffsiteError(N_("The S3 store {endpoint} refused the access key for bucket {bucket}: check "
                                      "S3_ACCESS_KEY and S3_SECRET_KEY ({reason})"),
                                   reason=self._scrub(f"{action} {key}: HTTP {status}"), **where) from None
            if isinstance(exc, InvalidResponseError):  # e.g. a web console's port, a proxy's page
                reason = (f"{action} {key}: HTTP {status} without an S3 answer: is S3_ENDPOINT the address of "
                          f"the store's S3 API?")
            else:
                reason = f"{action} {key}: {_first_line(exc)}"
            raise OffsiteError(N_("The S3 store {endpoint} (bucket {bucket}) failed: {reason}"),
                               reason=self._scrub(reason), **where) from None
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise OffsiteError(N_("The S3 store {endpoint} (bucket {bucket}) cannot be reached: {reason}"),
                               reason=self._scrub(_network_reason(exc)), **where) from None


def _network_reason(exc):
    """What went wrong on the way, in a few words (urllib3's own text repeats the whole URL)."""
    import urllib3.exceptions as errors

    inner = getattr(exc, "reason", None) if isinstance(exc, errors.MaxRetryError) else exc
    inner = inner or exc
    if isinstance(inner, errors.NameResolutionError):  # before its base classes below
        return "its host name is not known (DNS)"
    if isinstance(inner, errors.NewConnectionError):
        text = str(inner)
        return text.rsplit(": ", 1)[-1] if ": " in text else text
    if isinstance(inner, errors.ConnectTimeoutError):
        return f"no connection within {CONNECT_TIMEOUT} s"
    if isinstance(inner, (errors.ReadTimeoutError, TimeoutError)):
        return f"no answer within {READ_TIMEOUT} s"
    if isinstance(inner, errors.SSLError):
        return f"TLS: {_first_line(inner.args[0] if inner.args else inner)}"
    if isinstance(inner, errors.ProtocolError):
        return f"the connection broke: {_first_line(inner.args[0] if inner.args else inner)}"
    return _first_line(inner)


def _first_line(value):
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else type(value).__name__


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
