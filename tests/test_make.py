"""The dataset maker at toy scale: a few hundred SAC steps, a few hundred transitions."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from seqrl.datasets.make import MakeArgs, make  # noqa: E402

from seqrl.core.tasks import TASKS  # noqa: E402

WIDE = (-1e9, 1e9)  # stop at the first evaluation


def test_maker_writes_loadable_datasets_and_resumes(tmp_path, monkeypatch, capsys):
    from seqrl.datasets import load_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    args = MakeArgs(env="hopper", level=["medium", "medium-replay", "expert", "medium-expert"], namespace="toy",
                    out=tmp_path / "minari", work_dir=tmp_path / "work", transitions=300, max_sac_steps=400,
                    eval_every=100, eval_episodes=1, learning_starts=50, medium_band=WIDE, expert_band=WIDE)
    ids = make(args)
    out = capsys.readouterr().out
    assert ids == [f"toy/hopper/{lv}-v0" for lv in args.level]
    assert "| toy/hopper/medium-v0 |" in out and "| 300 |" in out  # summary table printed

    med, rep, exp, mexp = (load_minari(i, allow_download=False) for i in ids)
    assert med.num_transitions == exp.num_transitions == 300
    assert (med.info.ref_min_score, med.info.ref_max_score) == TASKS["hopper"].ref_scores
    assert med.info.env_id == "Hopper-v5"
    # medium-replay: every transition SAC stored up to the medium stop (the first evaluation, 100 steps)
    assert rep.num_transitions == 100
    # medium-expert: the medium episodes, then the expert ones
    assert mexp.num_episodes == med.num_episodes + exp.num_episodes
    np.testing.assert_array_equal(mexp.rewards, np.concatenate([med.rewards, exp.rewards]))
    # the files are gzip-compressed
    with h5py.File(tmp_path / "minari" / ids[0] / "data" / "main_data.hdf5") as f:
        assert f["episode_0/actions"].compression == "gzip"

    # a second call reuses the saved SAC stops instead of training again
    args2 = MakeArgs(**{**args.__dict__, "level": ["expert"], "overwrite": True})
    make(args2)
    assert "resuming SAC" in capsys.readouterr().out


def test_maker_refuses_to_overwrite(tmp_path, monkeypatch):
    from seqrl.core.errors import SeqRLError

    (tmp_path / "minari" / "toy" / "hopper" / "medium-v0").mkdir(parents=True)
    args = MakeArgs(env="hopper", level=["medium"], namespace="toy", out=tmp_path / "minari", work_dir=tmp_path / "w")
    with pytest.raises(SeqRLError, match=r"exist\(s\) under .*--overwrite"):
        make(args)


def test_expert_data_from_a_policy_file_without_training(tmp_path, monkeypatch, capsys):
    """--policy-out keeps the expert policy with its evaluations; --from-policy makes expert and medium-expert from
    it without training, the same bytes twice (seeded), medium-expert = the medium dataset + as many expert
    transitions as it has."""
    from seqrl.datasets import load_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    common = dict(env="hopper", namespace="toy", out=tmp_path / "minari", work_dir=tmp_path / "work", transitions=120,
                  max_sac_steps=400, eval_every=100, eval_episodes=1, learning_starts=50, algo="tqc",
                  medium_band=WIDE, expert_band=WIDE)
    make(MakeArgs(level=["medium", "expert"], policy_out=tmp_path / "policies", **common))
    policy, info = tmp_path / "policies" / "hopper-expert-tqc.zip", tmp_path / "policies" / "hopper-expert-tqc.json"
    meta = json.loads(info.read_text())
    assert policy.is_file() and meta["algo"] == "tqc" and meta["stop"]["step"] == 200 and len(meta["evals"]) == 2
    work_files = sorted(p.name for p in (tmp_path / "work" / "hopper" / "tqc").iterdir())
    capsys.readouterr()

    args = MakeArgs(level=["expert", "medium-expert"], from_policy=policy, medium_dataset="toy/hopper/medium-v0",
                    version=1, **{**common, "transitions": 90})
    make(args)
    assert "TQC to expert" not in capsys.readouterr().err  # nothing trained
    assert sorted(p.name for p in (tmp_path / "work" / "hopper" / "tqc").iterdir()) == work_files
    med, exp, mexp = (load_minari(f"toy/hopper/{lv}", allow_download=False)
                      for lv in ("medium-v0", "expert-v1", "medium-expert-v1"))
    assert exp.num_transitions == 90 and mexp.num_transitions == 2 * med.num_transitions == 240
    np.testing.assert_array_equal(mexp.rewards[:120], med.rewards)
    np.testing.assert_array_equal(mexp.rewards[120:210], exp.rewards)  # the expert rollouts, from the same start
    first = exp.rewards.copy()
    make(MakeArgs(**{**args.__dict__, "overwrite": True}))
    np.testing.assert_array_equal(load_minari("toy/hopper/expert-v1", allow_download=False).rewards, first)


def test_from_policy_refuses_what_it_cannot_make_and_a_missing_file(tmp_path):
    from seqrl.datasets.make import check_args
    from seqrl.core.errors import SeqRLError

    with pytest.raises(SeqRLError, match="--from-policy makes expert and medium-expert only; medium-replay need"):
        check_args(MakeArgs(env="hopper", level=["expert", "medium-replay"], from_policy=tmp_path / "p.zip"))
    args = MakeArgs(env="hopper", level=["expert"], namespace="toy", out=tmp_path / "m", from_policy=tmp_path / "p.zip",
                    algo="tqc")
    with pytest.raises(SeqRLError, match=r"--from-policy '.*p.zip' does not exist"):
        make(args)
    assert not (tmp_path / "m").exists()
