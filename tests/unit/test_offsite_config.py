"""The S3 store's settings (config.parse_s3_settings, offsite.S3Store.from_config): all four or none,
a URL the SDK can use, the prefix normalised, the secret repeated nowhere; and the SDK not loaded by
a service that only reads them."""
import subprocess
import sys

import pytest

from incus_api.config import ENV_KEYS, SettingError, load_config, parse_s3_settings
from incus_api.offsite import S3Store
from tests.conftest import ROOT

SECRET = "s3-secret-never-shown"
FULL = {"S3_ENDPOINT": "https://s3.example.com/", "S3_BUCKET": "backups", "S3_ACCESS_KEY": "AKIA1",
        "S3_SECRET_KEY": SECRET}


def test_no_endpoint_no_store_and_the_defaults(tmp_path):
    config = load_config(environ={}, instance_path=tmp_path)
    assert S3Store.from_config(config) is None
    assert config["S3_PREFIX"] == "incus-api-web/" and config["S3_REGION"] == "us-east-1"
    assert {"S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_PREFIX", "S3_REGION"} <= set(ENV_KEYS)


def test_a_full_setting_is_normalised(tmp_path):
    config = load_config(environ={**FULL, "S3_PREFIX": "/hosts/a", "S3_REGION": "auto"}, instance_path=tmp_path)
    assert config["S3_ENDPOINT"] == "https://s3.example.com" and config["S3_PREFIX"] == "hosts/a/"
    store = S3Store.from_config(config)
    assert (store.endpoint, store.bucket, store.prefix, store.region) == ("https://s3.example.com", "backups",
                                                                         "hosts/a/", "auto")
    assert store.key_of("web1.tar") == "hosts/a/web1.tar"
    assert SECRET not in repr(store) and SECRET not in str(vars(store))
    assert parse_s3_settings({**FULL, "S3_PREFIX": ""})["S3_PREFIX"] == ""  # the bucket's root
    assert parse_s3_settings({**FULL, "S3_ENDPOINT": "http://127.0.0.1:9000"})["S3_ENDPOINT"] == "http://127.0.0.1:9000"


def test_the_file_may_empty_the_prefix(tmp_path):
    (tmp_path / "config.env").write_text("".join(f"{key}={value}\n" for key, value in FULL.items()) + "S3_PREFIX=\n")
    assert load_config(environ={}, instance_path=tmp_path)["S3_PREFIX"] == ""


@pytest.mark.parametrize("missing", ["S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY"])
def test_a_store_half_set_up_refuses_to_start(tmp_path, missing):
    environ = {key: value for key, value in FULL.items() if key != missing}
    with pytest.raises(SettingError) as refused:
        load_config(environ=environ, instance_path=tmp_path)
    assert missing in str(refused.value) and SECRET not in str(refused.value)
    with pytest.raises(SettingError):
        S3Store.from_config(environ)


@pytest.mark.parametrize("key,value", [
    ("S3_ENDPOINT", "s3.example.com"), ("S3_ENDPOINT", "ftp://s3.example.com"), ("S3_ENDPOINT", "https://"),
    ("S3_ENDPOINT", "https://s3.example.com/bucket"), ("S3_ENDPOINT", "https://s3.example.com:99999"),
    ("S3_ENDPOINT", f"https://AKIA1:{SECRET}@s3.example.com"), ("S3_BUCKET", "a"), ("S3_BUCKET", "my bucket"),
    ("S3_PREFIX", "a/../b/"),
])
def test_a_setting_the_store_cannot_use_refuses_to_start(tmp_path, key, value):
    with pytest.raises(SettingError) as refused:
        load_config(environ={**FULL, key: value}, instance_path=tmp_path)
    assert key in str(refused.value) and SECRET not in str(refused.value)


def test_the_sdk_is_loaded_only_when_the_store_is_used():
    code = ("import sys; from incus_api.offsite import S3Store; "
            f"store = S3Store.from_config({FULL!r}); assert store is not None; "
            "print('minio' in sys.modules, 'urllib3' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split()[0] == "False", result.stdout
