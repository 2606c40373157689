"""Write a trained agent's policy step (``acting.PolicyStep``) as a self-contained ONNX or TorchScript file.

The graph takes (obs, rtg, prev_action, timestep, state...) and returns (action, next state...)
for any number of envs (the env dim is dynamic), in float32, with plain tensor ops only (no
native kernels). The file's metadata (``seqrl.runner.PolicyInfo``) says what the env, the
dimensions, the reference scores, the default targets, the return-to-go scale, the backbone
and the rollout mode are. ``seqrl.runner`` runs it.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Literal

import torch

from seqrl import __version__
from seqrl.core.errors import SeqRLError
from seqrl.core.files import write_atomic
from seqrl.runner import ACTION_OUTPUT, METADATA_KEY, STEP_INPUTS, TORCHSCRIPT_EXTRA, PolicyInfo

from .acting import PolicyStep
from .checkpoint import AgentBundle
from .policy import Rollout

ExportFormat = Literal["onnx", "torchscript"]
ONNX_OPSET = 17
EXAMPLE_ENVS = 2  # traced with 2 envs (1 would let a tracer treat the env dim as a constant)


def default_rollout(bundle: AgentBundle) -> Rollout:
    """recurrent where the backbone has an O(1) step, window for the transformer."""
    return "recurrent" if bundle.model.has_recurrent_step else "window"


def policy_step(bundle: AgentBundle, rollout: Rollout) -> PolicyStep:
    """The float32 CPU policy step of ``bundle`` (its model is copied, the bundle is left as it was)."""
    model = copy.deepcopy(bundle.model).float().cpu().eval()
    return PolicyStep(model, bundle.obs_mean, bundle.obs_std, bundle.rtg_scale, rollout)


def io_names(step: PolicyStep) -> tuple[list[str], list[str]]:
    states = [s.name for s in step.state_specs]
    return [*STEP_INPUTS, *(f"state.{n}" for n in states)], [ACTION_OUTPUT, *(f"next_state.{n}" for n in states)]


def example_inputs(step: PolicyStep, n: int = EXAMPLE_ENVS) -> tuple[torch.Tensor, ...]:
    model = step.model
    return (
        torch.zeros(n, model.obs_dim),
        torch.zeros(n),
        torch.zeros(n, model.act_dim),
        torch.arange(n, dtype=torch.long),  # t = 0 and t = 1: both branches of the recurrent step
        *step.initial_state(n),
    )


def policy_info(bundle: AgentBundle, step: PolicyStep, fmt: ExportFormat, checkpoint: str) -> PolicyInfo:
    cfg = bundle.model.cfg
    for spec, t in zip(step.state_specs, step.initial_state(1)):
        if t.count_nonzero():  # the runner starts every state from zeros
            raise SeqRLError(f"State {spec.name!r} of backbone {cfg.backbone!r} does not start at zero; cannot export.")
    return PolicyInfo(
        env_id=bundle.env_id,  # the env it acts in (a run's --eval-env, else the dataset's)
        obs_dim=bundle.model.obs_dim,
        act_dim=bundle.model.act_dim,
        backbone=cfg.backbone,
        rollout=step.rollout,
        rtg_scale=float(bundle.rtg_scale),
        default_targets=[float(t) for t in bundle.targets],
        ref_min_score=bundle.dataset.ref_min_score,
        ref_max_score=bundle.dataset.ref_max_score,
        state=[s.to_dict() for s in step.state_specs],
        dataset=bundle.dataset.to_dict(),
        model_config=cfg.to_dict(),
        checkpoint=checkpoint,
        step=bundle.step,
        seqrl_version=__version__,
        export_format=fmt,
        extra={"torch_version": torch.__version__},
    )


def _onnx_graph(step: PolicyStep, started: bool) -> "onnx.ModelProto":
    import onnx

    inputs, outputs = io_names(step)
    axes = {name: {0: "n_envs"} for name in STEP_INPUTS}
    for spec, i, o in zip(step.state_specs, inputs[len(STEP_INPUTS):], outputs[1:]):
        axes[i] = axes[o] = {spec.batch_dim: "n_envs"}
    axes[ACTION_OUTPUT] = {0: "n_envs"}
    example = list(example_inputs(step))
    example[3] = example[3] + int(started)  # timesteps 1, 2: every env past t = 0
    step.started = started
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the TorchScript-based exporter: ~1 s per graph (torch.export's takes ~20 s here) and a leaner graph
            torch.onnx.export(step, tuple(example), buf, dynamo=False, input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=ONNX_OPSET)
    finally:
        step.started = False
    return onnx.load_from_string(buf.getvalue())


def _branch(model: "onnx.ModelProto", prefix: str, outer: set[str]) -> "onnx.GraphProto":
    """``model``'s graph as an If branch: every inner name prefixed (no shadowing of the outer scope), the
    outer inputs read as they are, its weights kept inside it (ONNX Runtime then optimizes the branch as it
    would the graph alone: shared outer-scope weights measured ~20% slower)."""
    import onnx

    g = model.graph
    name = lambda n: n if n in outer or not n else f"{prefix}{n}"  # noqa: E731
    branch = onnx.GraphProto()
    branch.CopyFrom(g)
    branch.name = prefix.rstrip("/")
    del branch.input[:]
    for init in branch.initializer:
        init.name = name(init.name)
    for node in branch.node:
        node.name = f"{prefix}{node.name}"
        node.input[:] = [name(i) for i in node.input]
        node.output[:] = [name(o) for o in node.output]
    for v in [*branch.output, *branch.value_info]:
        v.name = name(v.name)
    return branch


def _if_started(general: "onnx.ModelProto", started: "onnx.ModelProto") -> "onnx.ModelProto":
    """One model: ``started``'s graph (one backbone pass) when every env's timestep is > 0, else ``general``'s."""
    import onnx
    from onnx import TensorProto, helper

    g = general.graph
    outer = {i.name for i in g.input}
    then_branch, else_branch = _branch(general, "general/", outer), _branch(started, "started/", outer)
    nodes = [
        helper.make_node("ReduceMin", ["timestep"], ["t_min"], keepdims=0),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [], [0])),
        helper.make_node("Equal", ["t_min", "zero"], ["any_first_step"]),
        helper.make_node("If", ["any_first_step"], [o.name for o in g.output], then_branch=then_branch,
                         else_branch=else_branch),
    ]
    graph = helper.make_graph(nodes, "seqrl_policy_step", list(g.input), list(g.output))
    return helper.make_model(graph, opset_imports=list(general.opset_import), producer_name="seqrl")


def _export_onnx(step: PolicyStep, info: PolicyInfo, out: Path) -> None:
    try:
        import onnx
    except ImportError:
        raise SeqRLError("ONNX export needs onnx and onnxscript: `pip install -e '.[deploy]'`.") from None
    model = _onnx_graph(step, started=False)
    if step.rollout == "recurrent":  # the common case, t > 0 for every env, gets its own one-pass graph
        model = _if_started(model, _onnx_graph(step, started=True))
    model.metadata_props.add(key=METADATA_KEY, value=info.to_json())
    onnx.checker.check_model(model, full_check=True)
    write_atomic(out, model.SerializeToString())


def _export_torchscript(step: PolicyStep, info: PolicyInfo, out: Path) -> None:
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # torch >= 2.10 marks torch.jit deprecated (it still works); tracer warnings are about shapes we vary
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.freeze(torch.jit.trace(step, example_inputs(step), check_trace=False).eval())
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_EXTRA: info.to_json()})
    write_atomic(out, buf.getvalue())


def export_policy(
    bundle: AgentBundle, out: Path, fmt: ExportFormat = "onnx", rollout: Rollout | None = None, checkpoint: str = ""
) -> PolicyInfo:
    """Write ``bundle``'s policy to ``out`` as ``fmt``, atomically; ``rollout`` None: ``default_rollout``."""
    step = policy_step(bundle, rollout or default_rollout(bundle))
    info = policy_info(bundle, step, fmt, checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    (_export_onnx if fmt == "onnx" else _export_torchscript)(step, info, out)
    return info
