"""Meta-SGD (Li, Zhou, Chen, Li 2017, arXiv 1707.09835): a step size per parameter.

MAML's inner step (eq. 2.2) uses one step size ``α`` for every parameter. Meta-SGD
gives every scalar parameter its own, and meta-learns them with ``θ`` (book eq. 10.2)::

    φ_{t,i} = φ_{t,i−1} − α · s ⊙ ∇L_support,t(φ_{t,i−1}),   φ_{t,0} = θ,

minimising the same meta-objective (eq. 2.3) over ``(θ, s)``. Here ``α`` is the
``inner_lr`` argument, a fixed scale, and ``s`` (shaped like ``θ``, initialised to 1)
is learned, so that at initialisation Meta-SGD *is* MAML with step ``α``; the paper's
per-parameter rate is the product ``α·s``. Nothing keeps ``s`` positive (the paper does
not either): a negative entry is a step up the gradient for that parameter.

Where the step sizes live. `mamlbook.meta_train` updates the parameters of the model
it is given. So the step sizes are parameters of a wrapper module, `MetaSGDNet`: it
holds the network (``net.``-prefixed names, ``net.0.weight``, ...) and one tensor of
step sizes per network parameter (``step_size.0_weight``, ...; dots become
underscores). Its forward is the network's; checkpoints store both.

For one step the meta-gradient has two parts (eq. 10.3), with ``g = ∇L_support(θ)``,
``H = ∇²L_support(θ)`` and ``φ = θ − α s ⊙ g``::

    ∂L_query(φ)/∂s = −α g ⊙ ∇L_query(φ),
    ∂L_query(φ)/∂θ = (I − α H diag(s)) ∇L_query(φ).

The second is MAML's one-step eq. (3.2) with ``α I`` replaced by ``α diag(s)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import checks
from ..functional import (
    LossFn,
    Params,
    batch_parameters,
    mse_per_task,
    task_forward,
    task_losses,
)
from ..tasks import TaskBatch
from .base import MetaStep, check_inputs, divergence_advice, leaf_parameters, register


class StepSizeNet(nn.Module):
    """A network and learned inner step sizes, as one module (base of `MetaSGDNet`
    and `mamlbook.LSLRNet`).

    Parameters: ``net.<name>`` for the network's, ``step_size.<name with _>`` for the
    step sizes (shape given by `step_size_shape`). ``forward``/``forward_with`` are the
    network's, so the module runs through `mamlbook.task_forward` like the network.
    """

    task_batched = True

    def __init__(self, net: nn.Module, init: float = 1.0):
        super().__init__()
        checks.module("net", net)
        checks.positive_float("init", init)
        self.net = net
        self.step_size = nn.ParameterDict(
            {
                name.replace(".", "_"): nn.Parameter(
                    torch.full(
                        self.step_size_shape(p),
                        float(init),
                        dtype=p.dtype,
                        device=p.device,
                    )
                )
                for name, p in net.named_parameters()
            }
        )
        self.init = float(init)

    def step_size_shape(self, p: Tensor) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def input_shape(self):
        return getattr(self.net, "input_shape", None)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def forward_with(self, params: Params, x: Tensor) -> Tensor:
        """The network with task-batched ``net.``-prefixed ``params`` (the step sizes
        are not used)."""
        return task_forward(self.net, self.split(params)[0], x)

    def split(self, params: Params) -> tuple[Params, Params]:
        """``params`` -> (network params, step sizes), both by the network's names."""
        net = {k[4:]: v for k, v in params.items() if k.startswith("net.")}
        sizes = {
            k: params["step_size." + k.replace(".", "_")]
            for k in net
            if "step_size." + k.replace(".", "_") in params
        }
        return net, sizes

    @property
    def architecture(self) -> str:
        inner = getattr(self.net, "architecture", type(self.net).__name__)
        return f"{type(self).__name__}({inner})"


class MetaSGDNet(StepSizeNet):
    """``net`` plus one learned step size per scalar parameter (Meta-SGD, eq. 10.2),
    initialised to ``init``.

    >>> model = MetaSGDNet(mamlbook.SinusoidMLP())
    >>> mamlbook.meta_train(model, mamlbook.SinusoidTasks(), method="meta_sgd", ...)
    """

    def step_size_shape(self, p: Tensor) -> tuple[int, ...]:
        return tuple(p.shape)


def scaled_sgd_steps(
    forward,
    params: Params,
    rates: list[Params],
    x_support: Tensor,
    y_support: Tensor,
    *,
    inner_lr: float,
    loss_fn: LossFn,
    first_order: bool,
) -> tuple[list[Params], Tensor]:
    """``len(rates)`` inner steps ``φ_i = φ_{i−1} − α · s_i ⊙ ∇L_support(φ_{i−1})``
    (eqs. 10.2, 10.4).

    ``params`` task-batched ``(T, ...)``; ``rates[i][k]`` broadcasts against
    ``params[k]`` (``(T, *shape)`` for Meta-SGD, ``(T, 1, ..., 1)`` for a per-layer
    rate). ``first_order``: each inner gradient is a constant (no second derivatives;
    the rates still get their gradient ``−α ∇L ⊙ ∇L_query``). Returns every
    ``φ_1 .. φ_k`` (for the multi-step loss) and the support losses ``(T,)`` at ``φ_0``.
    """
    trajectory, first = [], None
    for rate in rates:
        losses = loss_fn(forward(params, x_support), y_support)
        if first is None:
            first = losses.detach()
        grads = torch.autograd.grad(
            losses.sum(), list(params.values()), create_graph=not first_order
        )
        params = {
            k: v - inner_lr * rate[k] * g for (k, v), g in zip(params.items(), grads)
        }
        trajectory.append(params)
    return trajectory, first


def check_step_size_model(model: nn.Module, kind: type) -> None:
    """A TypeError unless ``model`` is the wrapper ``kind`` (`MetaSGDNet` or `LSLRNet`)."""
    if not isinstance(model, kind):
        raise TypeError(
            f"model must be a mamlbook.{kind.__name__} (the network and its learned "
            "step sizes in one module, so that meta_train updates both), got "
            f"{type(model).__name__}; wrap the network: "
            f"{kind.__name__}(net)"
        )


@register("meta_sgd")
def meta_sgd(
    model: nn.Module,
    params: Params,
    tasks: TaskBatch,
    *,
    inner_lr: float,
    inner_steps: int = 1,
    loss_fn: LossFn = mse_per_task,
    first_order: bool = False,
    on_divergence: str = "raise",
) -> MetaStep:
    """One Meta-SGD meta-gradient for ``θ`` and the step sizes ``s`` (eqs. 10.2,
    10.3), all tasks batched.

    Parameters
    ----------
    model : a `MetaSGDNet` (the network and its step sizes).
    params : the model's parameters as a dict: ``net.*`` (``θ``) and ``step_size.*``
        (``s``, shaped like ``θ``).
    tasks : `TaskBatch` with ``T`` tasks.
    inner_lr : ``α > 0``, the scale of the step sizes (the step is ``α·s``).
    inner_steps : ``k ≥ 1``; the same ``s`` at every step, as in the paper (one step).
    first_order : ``True``: inner gradients are constants (no Hessian term in
        ``∂/∂θ``; ``∂/∂s`` is still exact for one step). Default ``False``: exact.
    loss_fn, on_divergence : as for `maml`.

    Returns
    -------
    `MetaStep` whose ``grads`` hold ``∂L_meta/∂θ`` and ``∂L_meta/∂s`` under the model's
    names.
    """
    check_step_size_model(model, MetaSGDNet)
    loss_fn = check_inputs(
        model,
        params,
        tasks,
        inner_lr,
        inner_steps,
        loss_fn=loss_fn,
        on_divergence=on_divergence,
    )
    checks.flag("first_order", first_order)
    leaves = leaf_parameters(params)
    theta, sizes = model.split(leaves)
    t = tasks.num_tasks
    rate = batch_parameters(sizes, t)
    trajectory, support_loss = scaled_sgd_steps(
        lambda p, x: task_forward(model.net, p, x),
        batch_parameters(theta, t),
        [rate] * inner_steps,
        tasks.x_support,
        tasks.y_support,
        inner_lr=inner_lr,
        loss_fn=loss_fn,
        first_order=first_order,
    )
    query_loss = task_losses(
        model.net, trajectory[-1], tasks.x_query, tasks.y_query, loss_fn
    )
    meta_loss = query_loss.mean()
    grads = dict(zip(leaves, torch.autograd.grad(meta_loss, list(leaves.values()))))
    checks.finite_step(
        "meta_sgd",
        meta_loss,
        grads,
        on_divergence,
        divergence_advice(inner_lr, inner_steps)
        + "; or smaller step sizes (step_size.*)",
        params=params,
    )
    return MetaStep(meta_loss.detach(), grads, support_loss, query_loss.detach())
