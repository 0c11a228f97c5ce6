"""A graceful stop whose wait runs out as the container stops: Incus refuses the forced stop that
follows (already stopped), and the stop has done what it was asked; a forced stop that fails while
the container still runs is an error."""
import pytest

from incus_api.exceptions import IncusError, OperationTimeout
from tests.unit.test_images_passwords import incus, services  # noqa: F401 - the fake Incus fixture


def graceful_runs_out(incus, stops):  # noqa: F811
    real = incus.change_state

    def change_state(name, action, force=False, timeout=30):
        if action == "stop" and not force:
            if stops:
                incus.by_name[name]["status"] = "Stopped"
            raise OperationTimeout("the wait ran out")
        return real(name, action, force=force, timeout=timeout)

    incus.change_state = change_state


def test_a_stop_that_ends_as_its_wait_runs_out_is_done(incus, tmp_path):  # noqa: F811
    incus.add("web1")
    graceful_runs_out(incus, stops=True)
    assert services(incus, tmp_path).power.stop("web1") == ("Stopped", False)


def test_a_forced_stop_that_fails_while_it_runs_is_an_error(incus, tmp_path):  # noqa: F811
    incus.add("web1")
    graceful_runs_out(incus, stops=False)
    incus.failing["change_state"] = IncusError("Incus error: {reason}", reason="cannot stop it")
    with pytest.raises(IncusError, match="cannot stop it"):
        services(incus, tmp_path).power.stop("web1")
    assert incus.by_name["web1"]["status"] == "Running"
