"""Run an exported policy (``export.py``) without PyTorch: numpy + ONNX Runtime.

    from seqrl.runner import load_policy
    policy = load_policy("hopper_mingru.onnx")          # ONNX: numpy + onnxruntime only
    policy.reset(policy.default_targets[:1])             # N envs: one target return each
    action = policy.act(obs[None])[0]                    # obs: (N, obs_dim) -> (N, act_dim)
    policy.observe(np.array([reward]))                   # R^ <- R^ - r, t <- t + 1

``ExportedPolicy`` has the interface of the PyTorch ``SequencePolicy`` (``reset``, ``act``,
``observe``), so ``seqrl.envs.run_episodes`` and ``evaluate.py --policy`` drive either. The
file carries everything acting needs: the graph (state normalization, return-to-go
scaling, the tanh head inside) and the metadata (``PolicyInfo``). A TorchScript file runs
through the same class (that backend imports torch). This module imports neither torch nor
anything that does.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from seqrl.core.errors import SeqRLError

FILE_FORMAT = "seqrl-policy"  # metadata["format"]
FILE_VERSION = 1
METADATA_KEY = "seqrl"  # ONNX: metadata_props key holding the JSON; TorchScript: extra file "seqrl.json"
TORCHSCRIPT_EXTRA = "seqrl.json"
POLICY_MARKER = f'"format": "{FILE_FORMAT}"'.encode()  # in the metadata JSON an ONNX file holds as plain text
STEP_INPUTS = ("obs", "rtg", "prev_action", "timestep")  # then "state.<name>" per state tensor
ACTION_OUTPUT = "action"  # then "next_state.<name>" per state tensor


@dataclass(frozen=True)
class PolicyInfo:
    """The metadata inside an exported policy file."""

    env_id: str
    obs_dim: int
    act_dim: int
    backbone: str
    rollout: str  # recurrent or window
    rtg_scale: float
    default_targets: list[float]
    ref_min_score: float | None
    ref_max_score: float | None
    state: list[dict[str, Any]]  # per state tensor: name, shape (1 env), batch_dim, dtype
    dataset: dict[str, Any]  # the run's DatasetInfo (env spec, reference scores)
    model_config: dict[str, Any]
    checkpoint: str  # where the weights came from
    step: int  # training updates of that checkpoint
    seqrl_version: str
    export_format: str  # onnx or torchscript
    format: str = FILE_FORMAT
    format_version: int = FILE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        from dataclasses import asdict

        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, path: Path) -> "PolicyInfo":
        try:
            data = json.loads(text)
            if data.get("format") != FILE_FORMAT:
                raise ValueError("not a seqrl policy")
            if data.get("format_version", 0) > FILE_VERSION:
                raise SeqRLError(
                    f"{str(path)!r} was exported by a newer seqrl (policy file version {data['format_version']}, "
                    f"this one reads up to {FILE_VERSION}): upgrade seqrl."
                )
            return cls(**data)
        except SeqRLError:
            raise
        except Exception:
            raise SeqRLError(_not_a_policy(path, "its seqrl metadata is missing or unreadable")) from None


def _not_a_policy(path: Path, why: str) -> str:
    return (
        f"{str(path)!r} is not a seqrl policy file ({why}). Export one from a run directory with "
        "`python export.py RUN_DIR --format onnx --out FILE` (a run directory itself is evaluated with "
        "`evaluate.py RUN_DIR`)."
    )


class _Backend(Protocol):
    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]: ...


class _OnnxBackend:
    def __init__(self, path: Path, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise SeqRLError(
                "Running an ONNX policy needs onnxruntime: `pip install onnxruntime` (or seqrl's extra: "
                "`pip install -e '.[deploy]'`)."
            ) from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise SeqRLError(_not_a_policy(path, f"ONNX Runtime cannot read it: {str(e).strip()[:300]}")) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise SeqRLError(_not_a_policy(path, "an ONNX model without seqrl metadata"))
        self.info = PolicyInfo.from_json(meta[METADATA_KEY], path)
        # feeds come in the step's order, STEP_INPUTS then the state; a graph keeps only the inputs it reads
        # (a fused-token model reads no prev_action), so each feed goes to its name, if the graph has it
        names = [*STEP_INPUTS, *(f"state.{s['name']}" for s in self.info.state)]
        kept = {i.name for i in self.session.get_inputs()}
        self.feed_names = [n if n in kept else None for n in names]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, {n: f for n, f in zip(self.feed_names, feeds) if n is not None})


class _TorchScriptBackend:
    def __init__(self, path: Path, threads: int) -> None:
        import torch  # this backend needs PyTorch (ONNX files do not)

        files = {TORCHSCRIPT_EXTRA: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.10 marks torch.jit deprecated
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        except Exception as e:
            why = "a PyTorch checkpoint, not an exported policy" if _is_checkpoint(path) else (
                f"TorchScript cannot read it: {type(e).__name__}: {str(e).strip()[:200]}"
            )
            raise SeqRLError(_not_a_policy(path, why)) from None
        if not files[TORCHSCRIPT_EXTRA]:
            raise SeqRLError(_not_a_policy(path, "a TorchScript module without seqrl metadata"))
        self.info = PolicyInfo.from_json(files[TORCHSCRIPT_EXTRA], path)
        self.torch = torch
        if threads:
            torch.set_num_threads(threads)

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        with self.torch.inference_mode():
            out = self.module(*(self.torch.from_numpy(f) for f in feeds))
        return [o.numpy() for o in out]


def _is_checkpoint(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("data.pkl") for n in names) and not any("/code/" in n for n in names)


def is_policy_file(path: Path) -> bool:
    """Whether ``path`` is a file ``export.py`` wrote (ONNX or TorchScript, with seqrl's metadata), by its bytes,
    without loading it: what an export may replace."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return any(n.endswith(f"extra/{TORCHSCRIPT_EXTRA}") for n in z.namelist())
        return POLICY_MARKER in Path(path).read_bytes()
    except OSError:
        return False


def detect_format(path: Path) -> str:
    """``onnx`` or ``torchscript`` (a zip archive), from the file's bytes."""
    return "torchscript" if zipfile.is_zipfile(path) else "onnx"


class ExportedPolicy:
    """An exported policy for N envs, with the PyTorch ``SequencePolicy``'s interface.

    ``threads``: intra-op threads of the runtime (1: one thread, as the benchmarks measure;
    0: the runtime's default)."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SeqRLError(f"No policy file {str(self.path)!r}: pass a file written by export.py.")
        self.format = detect_format(self.path)
        backend = _TorchScriptBackend if self.format == "torchscript" else _OnnxBackend
        self._backend: _Backend = backend(self.path, threads)
        self.info: PolicyInfo = self._backend.info  # type: ignore[attr-defined]
        self.rollout = self.info.rollout
        self.rtg: np.ndarray | None = None  # per env, from reset()

    @property
    def default_targets(self) -> np.ndarray:
        return np.asarray(self.info.default_targets, dtype=np.float64)

    def initial_state(self, n: int) -> list[np.ndarray]:
        """The state tensors before the first step of ``n`` envs (zeros, shapes from the metadata)."""
        out = []
        for s in self.info.state:
            shape = list(s["shape"])
            shape[s["batch_dim"]] = n
            out.append(np.zeros(shape, dtype=np.dtype(s["dtype"])))
        return out

    def reset(self, targets: Sequence[float] | np.ndarray) -> None:
        """Start N episodes with the given target returns (N,), one per env."""
        targets = np.asarray(targets, dtype=np.float64).reshape(-1)
        if len(targets) == 0 or not np.isfinite(targets).all():
            raise SeqRLError(f"reset() takes one finite target return per env (N >= 1), got {targets.tolist()}.")
        n = len(targets)
        self.rtg = targets.astype(np.float32)
        self.t = 0
        self.state = self.initial_state(n)
        self.prev_action = np.zeros((n, self.info.act_dim), np.float32)

    @property
    def n_envs(self) -> int:
        """N, the envs given to ``reset``; a clear error before it."""
        if self.rtg is None:
            raise SeqRLError("act() and observe() follow reset(targets): call policy.reset(targets) first, with one "
                             "target return per env (e.g. policy.reset(policy.default_targets[:1]) for one env).")
        return len(self.rtg)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs: (N, obs_dim) -> actions (N, act_dim)."""
        n = self.n_envs
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 2 or obs.shape != (n, self.info.obs_dim):
            count = f": observations for {obs.shape[0]} envs" if obs.ndim == 2 and obs.shape[0] != n else ""
            raise SeqRLError(f"act() takes observations of shape (N, {self.info.obs_dim}) for the N = {n} envs given to "
                             f"reset(), got {obs.shape}{count}.")
        _check_finite("act()", "observations", obs)
        timestep = np.full(n, self.t, dtype=np.int64)
        action, *self.state = self._backend.run([obs, self.rtg, self.prev_action, timestep, *self.state])
        self.prev_action = action
        return action

    def observe(self, rewards: np.ndarray, actions: np.ndarray | None = None) -> None:
        """After the env step: R^ <- R^ - r, t <- t + 1. ``rewards``: one per env, (N,) (or (N, 1)). ``actions``
        (N, act_dim), if given, replace the actions the policy returned as the ones taken (e.g. clipped by the
        env, or teacher forcing)."""
        n = self.n_envs
        rewards = np.asarray(rewards, dtype=np.float64)
        if rewards.shape not in ((n,), (n, 1)):
            raise SeqRLError(f"observe() takes one reward per env, shape ({n},) for the N = {n} envs given to reset(), "
                             f"got {rewards.shape}.")
        _check_finite("observe()", "rewards", rewards)
        if actions is not None:
            actions = np.asarray(actions, dtype=np.float32)
            if actions.shape != self.prev_action.shape:
                raise SeqRLError(f"observe() takes the actions taken as shape {self.prev_action.shape} (N = {n} envs, "
                                 f"{self.info.act_dim} each), got {actions.shape}.")
            _check_finite("observe()", "actions", actions)
            self.prev_action = actions
        self.rtg = self.rtg - rewards.reshape(n).astype(np.float32)
        self.t += 1


def _check_finite(call: str, what: str, values: np.ndarray) -> None:
    """A NaN or infinity in what a caller gave is refused, naming the envs (rows) that hold one."""
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        raise SeqRLError(f"{call}: the {what} of env(s) {np.flatnonzero(bad).tolist()[:10]} hold NaN or infinity; "
                         "the policy's output would be meaningless. Check the env (a diverged simulation) or the array.")


def load_policy(path: str | Path, threads: int = 1) -> ExportedPolicy:
    """Load an exported policy file (ONNX or TorchScript, told apart by its bytes)."""
    return ExportedPolicy(path, threads)
