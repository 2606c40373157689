"""The dataset maker at toy scale: a few hundred SAC steps, a few hundred transitions."""

from __future__ import annotations

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
    with pytest.raises(SeqRLError, match="exists under .*--overwrite"):
        make(args)
