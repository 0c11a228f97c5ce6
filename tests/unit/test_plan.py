"""The plan fields: parsed strictly into what Incus is given, and read back from an instance."""
import gzip

import pytest

from incus_api.exceptions import BadInput
from incus_api.host.kernel_modules import KernelModules
from incus_api.parse import names, numbers
from incus_api.parse import quantities as parse
from incus_api.schemas.plan import CREATE_PLAN_PARAMS, PLAN_PARAMS
from incus_api.service.limits import CreateSettings, limits_of
from incus_api.service.plans import Plan

BAD = ["1e3", "-1", "²", "10XB", "9" * 30, " 5", "5\n", "+5", "0x10", "5.0", "٣", "１"]


@pytest.mark.parametrize("param", PLAN_PARAMS, ids=lambda p: p.name)
@pytest.mark.parametrize("value", BAD)
def test_every_limit_refuses_what_is_not_plain_digits_and_a_unit(param, value):
    with pytest.raises(BadInput) as caught:
        param.parse(value)
    assert param.name in caught.value.message


@pytest.mark.parametrize("value, text, amount", [
    ("256MiB", "256MiB", 256 * 1024**2), ("1GiB", "1GiB", 1024**3), ("512MB", "512MB", 512 * 1000**2),
    ("2gib", "2GiB", 2 * 1024**3), ("1TB", "1TB", 1000**4), ("0032MiB", "32MiB", 32 * 1024**2),
])
def test_memory_sizes_in_incus_spelling(value, text, amount):
    assert parse.memory(value) == parse.Quantity(amount, text)


@pytest.mark.parametrize("value", ["31MiB", "5TiB", "0GiB", "1024", "1 GiB", "1GiBs", "1Gi", "1KB\u212a"])
def test_memory_out_of_bounds_or_without_unit(value):
    with pytest.raises(BadInput) as caught:
        parse.memory(value)
    assert "32MiB" in caught.value.message and "4TiB" in caught.value.message


def test_kelvin_sign_is_not_a_k():
    with pytest.raises(BadInput):
        parse.rate("100\u212abit", "ingress")  # 'K' would match 'k' case-insensitively in Unicode


@pytest.mark.parametrize("value, text", [("10Mbit", "10Mbit"), ("1gbit", "1Gbit"), ("512kbit", "512kbit")])
def test_rates(value, text):
    assert parse.rate(value, "egress").text == text


@pytest.mark.parametrize("value", ["10Mbps", "10MB", "1kbit", "101Gbit", "10"])
def test_bad_rates_name_the_field(value):
    with pytest.raises(BadInput) as caught:
        parse.rate(value, "egress")
    assert "egress" in caught.value.message


def test_whole_numbers_and_booleans():
    assert parse.cpu("2") == 2 and parse.processes("50") == 50
    for bad in ("0", "1025"):
        with pytest.raises(BadInput):
            parse.cpu(bad)
    assert numbers.boolean("true", "swap") is True and numbers.boolean("FALSE", "swap") is False
    with pytest.raises(BadInput) as caught:
        numbers.boolean("yes", "swap")
    assert "swap" in caught.value.message


@pytest.mark.parametrize("value", ["-x", "a/b", "a b", "", "x" * 64, "é"])
def test_incus_names(value):
    with pytest.raises(BadInput):
        names.incus_name(value, "storage_pool")


def test_incus_sizes_as_stored():
    assert parse.incus_size("10GiB") == 10 * 1024**3
    assert parse.incus_size("500MB") == 500 * 1000**2
    assert parse.incus_size("1048576") == 1048576
    assert parse.incus_size("") is None and parse.incus_size("lots") is None


def plan(**values):
    parsed = {param.name: param.parse(values[param.name]) for param in CREATE_PLAN_PARAMS if param.name in values}
    return Plan.from_values(**parsed)


def test_plan_config_and_devices():
    p = plan(cpu="1", memory="128MiB", swap="false", processes="50", disk="1GiB", ingress="10Mbit", egress="5Mbit")
    assert p.config() == {"limits.cpu": "1", "limits.memory": "128MiB", "limits.memory.swap": "false",
                          "limits.processes": "50"}
    nic = ("eth0", {"type": "nic", "network": "incusbr0", "ipv4.address": "10.0.0.5", "security.mac_filtering": "true"})
    root = ("root", {"type": "disk", "path": "/", "pool": "fast"})
    assert p.devices(nic=nic, root=root) == {
        "eth0": {**nic[1], "limits.ingress": "10Mbit", "limits.egress": "5Mbit"},
        "root": {"type": "disk", "path": "/", "pool": "fast", "size": "1GiB"},
    }
    assert root[1] == {"type": "disk", "path": "/", "pool": "fast"}  # the profile's device is copied


def test_an_empty_plan_writes_nothing():
    empty = Plan.from_values()
    assert empty.is_empty() and empty.config() == {} and empty.devices(nic=("eth0", {}), root=("root", {})) == {}
    with pytest.raises(TypeError):
        Plan.from_values(name="web1")


def test_create_settings_keep_the_pinned_nic_and_add_the_root_disk():
    p = plan(egress="10Mbit", storage_pool="fast", disk="2GiB")
    settings = CreateSettings(p, profiles=None, root=("root", {"type": "disk", "path": "/", "pool": "default"}))
    pinned = {"eth0": {"type": "nic", "network": "incusbr0", "name": "eth0", "ipv4.address": "10.0.0.9",
                       "security.ipv4_filtering": "true"}}
    assert settings.devices(pinned) == {
        "eth0": {**pinned["eth0"], "limits.egress": "10Mbit"},
        "root": {"type": "disk", "path": "/", "pool": "fast", "size": "2GiB"},
    }


def test_limits_of_reads_config_and_devices():
    instance = {
        "expanded_config": {"limits.cpu": "2", "limits.memory": "1GiB", "limits.memory.swap": "false",
                            "limits.processes": "100"},
        "expanded_devices": {
            "eth0": {"type": "nic", "network": "incusbr0", "limits.ingress": "10Mbit"},
            "root": {"type": "disk", "path": "/", "pool": "p", "size": "5GiB"},
        },
    }
    assert limits_of(instance, "incusbr0") == {"cpu": 2, "memory": "1GiB", "swap": False, "disk": "5GiB",
                                               "ingress": "10Mbit", "egress": None, "processes": 100}
    assert limits_of({"config": {"limits.cpu": "0-1"}}, "incusbr0") == {
        "cpu": "0-1", "memory": None, "swap": None, "disk": None, "ingress": None, "egress": None, "processes": None}


def fake_kernel(tmp_path, config=None, sys_modules=(), proc_modules=""):
    for module in sys_modules:
        (tmp_path / "sys" / "module" / module).mkdir(parents=True)
    (tmp_path / "proc").mkdir(exist_ok=True)
    (tmp_path / "proc" / "modules").write_text(proc_modules)
    if config is not None:
        with gzip.open(tmp_path / "proc" / "config.gz", "wt") as handle:
            handle.write(config)
    return KernelModules(root=str(tmp_path), release="test")


def test_kernel_modules_from_sysfs_proc_and_config(tmp_path):
    kernel = fake_kernel(tmp_path, sys_modules=["sch_htb"], proc_modules="cls_u32 16384 0 - Live 0x0\n",
                         config="CONFIG_NET_SCH_INGRESS=y\n# CONFIG_NET_ACT_POLICE is not set\n")
    assert kernel.has("sch_htb") and kernel.has("cls_u32") and kernel.has("sch_ingress")
    assert kernel.has("act_police") is False
    assert kernel.missing(["sch_ingress", "cls_u32", "act_police"]) == ["act_police"]


def test_kernel_modules_unknown_without_any_source(tmp_path):
    kernel = fake_kernel(tmp_path)
    assert kernel.has("act_police") is None and kernel.missing(["act_police"]) == []
