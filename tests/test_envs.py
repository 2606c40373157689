"""The evaluation envs' side effects: MuJoCo's warnings become Python warnings (shown once, filterable) instead
of lines printed for every env and a MUJOCO_LOG.TXT in the working directory."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

from seqrl.envs import make_env  # noqa: E402
from seqrl.core.mujoco_warnings import MuJoCoWarning, route_mujoco_warnings  # noqa: E402

BALL = "<mujoco><worldbody><body><freejoint/><geom size='.1'/></body></worldbody></mujoco>"


def unstable_step() -> None:
    """One step from a NaN velocity: MuJoCo warns that the simulation is unstable (a warning every version gives)."""
    model = mujoco.MjModel.from_xml_string(BALL)
    data = mujoco.MjData(model)
    data.qvel[:] = np.nan
    mujoco.mj_step(model, data)


@pytest.fixture
def no_handler():
    before = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(None)
    yield
    mujoco.set_mju_user_warning(before)


def test_make_env_routes_mujoco_warnings_to_python(no_handler, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    env = make_env("Hopper-v5")
    env.close()
    with pytest.warns(MuJoCoWarning, match="MuJoCo: Nan, Inf or huge value in QVEL"):
        unstable_step()
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()  # MuJoCo's default handler would have written it
    assert "WARNING" not in capfd.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MuJoCoWarning)  # the user can filter them like any warning
        unstable_step()
    assert capfd.readouterr().err == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error", MuJoCoWarning)  # -W error: raising inside MuJoCo's C code would abort
        unstable_step()
    assert "MuJoCo warning: Nan, Inf or huge value in QVEL" in capfd.readouterr().err


def test_a_users_handler_is_kept(no_handler):
    seen: list[str] = []
    mujoco.set_mju_user_warning(seen.append)
    route_mujoco_warnings()
    unstable_step()
    assert len(seen) == 1 and seen[0].startswith("Nan, Inf or huge value")


def test_a_signal_swallowed_while_an_env_is_made_stops_the_command_not_a_missing_mujoco(monkeypatch):
    """A SIGTERM that lands inside MuJoCo's import surfaces from gymnasium as "MuJoCo is not installed"; make_env
    raises the stop (exit 143 and what is kept), not that false error."""
    import os
    import signal

    import gymnasium as gym
    from gymnasium.error import DependencyNotInstalled

    from seqrl.core.command import Stopped, stop_on_signals

    def make_during_a_signal(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises Stopped here, as inside an import
        except KeyboardInterrupt:
            raise DependencyNotInstalled('MuJoCo is not installed, run `pip install "gymnasium[mujoco]"`') from None

    monkeypatch.setattr(gym, "make", make_during_a_signal)
    with stop_on_signals(), pytest.raises(Stopped) as stop:
        make_env("Hopper-v5", dataset_name="test")
    assert stop.value.exit_status == 143
