import subprocess
import sys

import pytest

from incus_api.exceptions import BadInput
from incus_api.parse import choices, commands, names, ports
from incus_api.service.images import image_source


@pytest.mark.parametrize("name", ["a", "web1", "t-x-1", "A" * 63, "vps-01"])
def test_valid_container_names(name):
    assert names.container_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "1abc", "-abc", "abc-", "a_b", "a b", "a/b", "..", "a.b", "A" * 64, "容器", "a\x00b"],
)
def test_invalid_container_names_are_rejected_with_a_message(name):
    with pytest.raises(BadInput) as error:
        names.container_name(name)
    assert error.value.message


@pytest.mark.parametrize("value, expected", [("1", 1), ("80", 80), ("65535", 65535)])
def test_valid_ports(value, expected):
    assert ports.port(value, "host_port") == expected


@pytest.mark.parametrize("value", ["0", "-1", "65536", "1e3", " 80", "80 ", "8.0", "", "٣", "0x50", "+80"])
def test_invalid_ports(value):
    with pytest.raises(BadInput) as error:
        ports.port(value, "host_port")
    assert "host_port" in error.value.message


def test_protocol_is_tcp_or_udp_case_insensitively():
    assert ports.protocol("TCP") == "tcp"
    assert ports.protocol("udp") == "udp"
    with pytest.raises(BadInput):
        ports.protocol("icmp")


def test_action():
    assert choices.action("Restart") == "restart"
    with pytest.raises(BadInput):
        choices.action("reboot")


def test_command_is_split_like_a_shell_without_running_one():
    assert commands.command("""sh -c 'echo "a b"; exit 3'""") == ["sh", "-c", 'echo "a b"; exit 3']
    assert commands.command("echo $HOME; rm -rf /") == ["echo", "$HOME;", "rm", "-rf", "/"]


@pytest.mark.parametrize("command", ["echo 'unterminated", "a\x00b", "x" * (commands.MAX_COMMAND_BYTES + 1), "   "])
def test_bad_commands(command):
    with pytest.raises(BadInput):
        commands.command(command)


@pytest.mark.parametrize("image", ["busybox", "debian12-ssh", "images:debian/12", "local:busybox", "a1b2c3d4e5f6"])
def test_valid_image_refs(image):
    assert names.image_ref(image) == image


@pytest.mark.parametrize("image", ["", "a b", "../x", "x;rm", "-x"])
def test_invalid_image_refs(image):
    with pytest.raises(BadInput):
        names.image_ref(image)


REMOTES = {"images": "https://images.example", "mirror": "https://mirror.example"}


def test_image_source_local_alias_and_fingerprint():
    assert image_source("busybox", REMOTES) == {"type": "image", "alias": "busybox"}
    assert image_source("local:busybox", REMOTES) == {"type": "image", "alias": "busybox"}
    assert image_source("a878cbc0f4b7", REMOTES) == {"type": "image", "fingerprint": "a878cbc0f4b7"}


def test_image_source_remote_is_pulled_from_simplestreams():
    assert image_source("mirror:debian/12", REMOTES) == {
        "type": "image",
        "mode": "pull",
        "server": "https://mirror.example",
        "protocol": "simplestreams",
        "alias": "debian/12",
    }


def test_image_source_unknown_remote():
    with pytest.raises(BadInput) as error:
        image_source("nope:debian/12", REMOTES)
    assert "nope" in error.value.message and "images" in error.value.message


def test_the_parsers_are_one_package_of_pure_python():
    """``incus_api.parse`` imports neither Flask nor werkzeug: the services, the CLI and the settings use
    the same parsers as the routes."""
    code = ("import pkgutil, importlib, sys, incus_api.parse as p\n"
            "for m in pkgutil.iter_modules(p.__path__): importlib.import_module('incus_api.parse.' + m.name)\n"
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'flask', 'werkzeug', 'flask_babel'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
