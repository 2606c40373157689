"""Dataset loading, episode splitting, returns-to-go, statistics and window sampling,
checked against hand-computed arrays."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from seqrl.datasets import DatasetInfo, TrajectoryDataset, WindowSampler, load_d4rl_file, resolve_dataset
from seqrl.datasets.d4rl import d4rl_url, write_d4rl_file
from seqrl.core.errors import SeqRLError

from helpers import random_hopper_arrays
from seqrl.core.tasks import TASKS

INFO = DatasetInfo("hand", "d4rl", "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)


def hand_dataset() -> TrajectoryDataset:
    # 7 steps: episode A = steps 0-2 (terminal at 2), B = 3-4 (timeout at 4), C = 5-6 (no flag: data ends)
    obs = np.arange(14, dtype=np.float32).reshape(7, 2)
    act = np.linspace(-1, 1, 7, dtype=np.float32)[:, None]
    rew = np.array([1, 2, 3, 4, 5, 6, 7], np.float32)
    terminals = np.array([0, 0, 1, 0, 0, 0, 0], bool)
    timeouts = np.array([0, 0, 0, 0, 1, 0, 0], bool)
    return TrajectoryDataset.from_flat(obs, act, rew, terminals, timeouts, INFO)


def test_episode_split_on_terminals_and_timeouts():
    ds = hand_dataset()
    assert ds.starts.tolist() == [0, 3, 5]
    assert ds.lengths.tolist() == [3, 2, 2]
    assert ds.terminated.tolist() == [True, False, False]
    assert ds.episode_returns().tolist() == [6.0, 9.0, 13.0]


def test_returns_to_go_by_hand():
    np.testing.assert_array_equal(hand_dataset().returns_to_go(), [6, 5, 3, 9, 5, 13, 7])


def test_state_stats():
    mean, std = hand_dataset().state_stats()
    np.testing.assert_allclose(mean, [6.0, 7.0])
    np.testing.assert_allclose(std, np.full(2, np.arange(0, 14, 2).std() + 1e-6), rtol=1e-6)


def test_normalized_score_formula():
    lo, hi = TASKS["hopper"].ref_scores
    np.testing.assert_allclose(INFO.normalized_score([lo, hi, 1000.0]), [0.0, 100.0, 100 * (1000 - lo) / (hi - lo)])


def test_window_padding_and_mask_by_hand():
    ds = hand_dataset()
    mean, std = np.zeros(2, np.float32), np.ones(2, np.float32)
    s = WindowSampler(ds, context_len=4, obs_mean=mean, obs_std=std, rtg_scale=10.0, max_ep_len=1000)
    b = s.gather(*s.windows(np.array([1, 5, 3])))  # starts: A at t=1, C at t=0, B at t=0
    assert b.mask.tolist() == [[True, True, False, False], [True, True, False, False], [True, True, False, False]]
    assert b.timesteps.tolist() == [[1, 2, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]]
    np.testing.assert_allclose(b.rtg[..., 0].numpy(), [[0.5, 0.3, 0, 0], [1.3, 0.7, 0, 0], [0.9, 0.5, 0, 0]])
    np.testing.assert_array_equal(b.states[0].numpy(), [[2, 3], [4, 5], [0, 0], [0, 0]])
    np.testing.assert_allclose(b.actions[1, :, 0].numpy(), [ds.actions[5, 0], ds.actions[6, 0], 0, 0])


def test_window_timesteps_clamped_to_max_ep_len():
    ds = hand_dataset()
    s = WindowSampler(ds, 3, np.zeros(2, np.float32), np.ones(2, np.float32), 1.0, max_ep_len=2)
    assert s.gather(*s.windows(np.array([0]))).timesteps.tolist() == [[0, 1, 1]]


def test_windows_sample_episodes_in_proportion_to_length():
    ds = hand_dataset()  # lengths 3, 2, 2
    s = WindowSampler(ds, 2, np.zeros(2, np.float32), np.ones(2, np.float32), 1.0, 1000, seed=0)
    rows, ts, _ = s.sample_indices(70_000)
    first = rows[:, 0]
    frac = np.bincount(s.episode_of[first], minlength=3) / len(first)
    np.testing.assert_allclose(frac, [3 / 7, 2 / 7, 2 / 7], atol=0.01)
    assert set(ts[:, 0].tolist()) == {0, 1, 2}  # every start inside an episode


def test_d4rl_file_loader(d4rl_file):
    arrays = {k: h5py.File(d4rl_file)[k][()] for k in ("rewards", "terminals", "timeouts")}
    ds = load_d4rl_file(d4rl_file)
    n_ends = int((arrays["terminals"] | arrays["timeouts"]).sum())
    assert ds.num_episodes == n_ends
    assert ds.num_transitions == len(arrays["rewards"])
    assert ds.info.env_id == "Hopper-v5" and ds.info.ref_max_score == TASKS["hopper"].ref_scores[1]
    np.testing.assert_allclose(ds.episode_returns().sum(), arrays["rewards"].sum(), rtol=1e-5)


def test_minari_loader_keeps_observations_before_actions(data_root):
    import minari

    ref = minari.load_dataset("test/hopper/medium-v0")
    res = resolve_dataset("test/hopper/medium-v0", None, data_root / "d4rl")
    ds = res.data
    eps = list(ref.iterate_episodes())
    assert ds.num_episodes == len(eps) == 6
    assert ds.lengths.tolist() == [len(e.actions) for e in eps]
    np.testing.assert_array_equal(ds.observations[: ds.lengths[0]], eps[0].observations[:-1].astype(np.float32))
    np.testing.assert_array_equal(ds.actions[ds.starts[1] : ds.starts[2]], eps[1].actions)
    assert ds.info.env_id == "Hopper-v5"
    assert (ds.info.ref_min_score, ds.info.ref_max_score) == TASKS["hopper"].ref_scores
    assert ds.terminated.tolist() == [bool(e.terminations[-1]) for e in eps]


def test_level_shorthand_prefers_cached_d4rl_then_local_minari(data_root, d4rl_file):
    res = resolve_dataset("medium", "hopper", data_root / "d4rl")
    assert res.data.info.name == "test/hopper/medium-v0" and "local Minari" in res.how
    cache = data_root / "d4rl_with_file"
    cache.mkdir()
    (cache / "hopper-medium-v2.hdf5").write_bytes(d4rl_file.read_bytes())
    res = resolve_dataset("medium", "hopper", cache)
    assert res.data.info.name == "hopper-medium-v2" and res.data.info.source == "d4rl"


def test_d4rl_name_downloads_once_into_cache(tmp_path, d4rl_file, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "hopper_medium_replay-v2.hdf5").write_bytes(d4rl_file.read_bytes())
    monkeypatch.setenv("SEQRL_D4RL_URL", mirror.as_uri())
    assert d4rl_url("hopper-medium-replay-v2") == mirror.as_uri() + "/hopper_medium_replay-v2.hdf5"
    cache = tmp_path / "cache"
    res = resolve_dataset("hopper-medium-replay-v2", None, cache)
    assert sorted(p.name for p in cache.iterdir()) == ["hopper-medium-replay-v2.hdf5"]
    assert res.data.num_transitions == load_d4rl_file(d4rl_file).num_transitions
    (mirror / "hopper_medium_replay-v2.hdf5").unlink()  # a second load must not need the network
    assert resolve_dataset("hopper-medium-replay-v2", None, cache).data.num_transitions == res.data.num_transitions


def test_failed_download_leaves_nothing_and_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQRL_D4RL_URL", (tmp_path / "nowhere").as_uri())
    cache = tmp_path / "cache"
    with pytest.raises(SeqRLError, match=r"hopper-medium-v2.*could not be downloaded.*Put the file at"):
        resolve_dataset("hopper-medium-v2", None, cache)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.write_text("not hdf5"), p)[1], "Cannot read .* as an HDF5 file"),
        (lambda p: (h5py.File(p, "w").create_dataset("observations", data=np.zeros((3, 11))), p)[1], "lacks the key"),
    ],
    ids=["missing", "not-hdf5", "missing-key"],
)
def test_bad_d4rl_files_give_clear_errors(tmp_path, make, match):
    with pytest.raises(SeqRLError, match=match):
        load_d4rl_file(make(tmp_path / "hopper-bad-v2.hdf5"))


def test_nan_in_dataset_is_reported_with_count_and_place(tmp_path):
    arrays = random_hopper_arrays(2, max_steps=10)
    arrays["observations"][4, 2] = np.nan
    arrays["rewards"][7] = np.inf
    path = tmp_path / "hopper-nan-v2.hdf5"
    write_d4rl_file(path, **arrays)
    with pytest.raises(SeqRLError, match=r"1 NaN/inf values in observations, in 1 transitions \(first at transition 4\)"):
        load_d4rl_file(path)


def test_unknown_names_give_clear_errors(data_root):
    with pytest.raises(SeqRLError, match="Unknown dataset 'mediun'. Did you mean 'medium'"):
        resolve_dataset("mediun", "hopper", data_root / "d4rl")
    with pytest.raises(SeqRLError, match="Unknown env 'hoper'. Did you mean 'hopper'"):
        resolve_dataset("medium", "hoper", data_root / "d4rl")
    with pytest.raises(SeqRLError, match=r"'tset/hopper/medium-v0' could not be loaded.*Did you mean 'test/hopper/medium-v0'"):
        resolve_dataset("tset/hopper/medium-v0", None, data_root / "d4rl", allow_download=True)
    with pytest.raises(SeqRLError, match="Unknown dataset 'hopper-medium-v3'. Did you mean 'hopper-medium-v2'"):
        resolve_dataset("hopper-medium-v3", None, data_root / "d4rl")


def test_empty_dataset_is_refused(tmp_path):
    path = tmp_path / "hopper-empty-v2.hdf5"
    write_d4rl_file(path, np.zeros((0, 11)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, bool), np.zeros(0, bool))
    with pytest.raises(SeqRLError, match="holds no transitions"):
        load_d4rl_file(path)


NINE = [f"{t}-{lv}-v2" for t in ("hopper", "halfcheetah", "walker2d") for lv in ("medium", "medium-replay", "medium-expert")]


@pytest.fixture(scope="module")
def nine_cache(tmp_path_factory):
    """Small stand-in files under the nine D4RL names (right observation/action sizes per task)."""
    cache = tmp_path_factory.mktemp("d4rl_nine")
    dims = {"hopper": (11, 3), "halfcheetah": (17, 6), "walker2d": (17, 6)}
    rng = np.random.default_rng(0)
    for name in NINE:
        o, a = dims[name.split("-")[0]]
        n = 30
        write_d4rl_file(cache / f"{name}.hdf5", rng.normal(size=(n, o)), rng.uniform(-1, 1, (n, a)), rng.normal(size=n),
                        np.arange(n) % 10 == 9, np.zeros(n, bool))
    return cache


@pytest.mark.parametrize("name", NINE)
def test_nine_d4rl_names_resolve_from_the_cache(nine_cache, name):
    task, level = name.split("-", 1)[0], name.split("-", 1)[1][: -len("-v2")]
    res = resolve_dataset(name, None, nine_cache, allow_download=False)
    expect_env = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v4"}[task]
    assert res.data.info.env_id == expect_env and res.data.info.name == name
    assert res.data.num_episodes == 3
    short = resolve_dataset(level, task, nine_cache, allow_download=False)  # --env TASK --dataset LEVEL
    assert short.data.info.name == name and "cached" in short.how
    assert d4rl_url(name).endswith(f"/{task}_{level.replace('-', '_')}-v2.hdf5")
