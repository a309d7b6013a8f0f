"""Models whose layers accept task-batched parameters.

`TaskLinear` is an ``nn.Linear`` whose forward also works when ``torch.func.
functional_call`` swaps in weights with a leading task dimension: ``weight (T, out,
in)``, ``bias (T, out)``, ``x (T, N, in)`` -> ``(T, N, out)`` as one batched matrix
product (``torch.baddbmm``). A meta-batch therefore costs one matrix product per layer,
not one per task, which is what makes `mamlbook` fast at this size (see the
Performance appendix).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import checks


def task_linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x Wᵀ + b``: task-batched ``x (T, N, in)``, ``W (T, out, in)``,
    ``b (T, out)`` -> ``(T, N, out)`` as one ``baddbmm``; unbatched ``W (out, in)``,
    ``b (out,)`` as ``nn.functional.linear``."""
    if weight.ndim == 3:
        return torch.baddbmm(bias.unsqueeze(-2), x, weight.transpose(1, 2))
    return nn.functional.linear(x, weight, bias)


class TaskLinear(nn.Linear):
    """``y = x Wᵀ + b``, with or without a leading task dimension on ``W``, ``b``,
    ``x``."""

    def forward(self, x: Tensor) -> Tensor:
        return task_linear(x, self.weight, self.bias)


class SinusoidMLP(nn.Sequential):
    """The MAML paper's regressor: 1-40-40-1 with ReLU (Finn et al. 2017, §5.1).

    Input ``(N, 1)`` or, with task-batched parameters, ``(T, N, 1)``; output the same
    shape with last dimension 1.
    """

    task_batched = True  # see mamlbook.functional.task_forward

    def __init__(
        self,
        hidden: tuple[int, ...] = (40, 40),
        in_features: int = 1,
        out_features: int = 1,
    ):
        if not isinstance(hidden, (tuple, list)):
            raise TypeError(
                "hidden must be a tuple of layer widths, e.g. (40, 40) or (40,) for "
                f"one hidden layer, got {type(hidden).__name__} {hidden!r}"
            )
        if len(hidden) == 0:
            raise ValueError(
                "hidden must be a non-empty tuple of positive ints (the hidden layer "
                "widths), got ()"
            )
        for i, h in enumerate(hidden):
            checks.positive_int(f"hidden[{i}]", h)
        checks.positive_int("in_features", in_features)
        checks.positive_int("out_features", out_features)
        sizes = (in_features, *hidden, out_features)
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(TaskLinear(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)
        self.hidden = tuple(hidden)
        self.input_shape = (
            in_features,
        )  # one example's input (mamlbook.checks.model_input_shape)

    def forward_with(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """``functional_call(self, params, (x,))``, computed directly from the dict.

        The meta-step's fast path (`mamlbook.functional.task_forward`): the same
        operations, without swapping ``params`` into the module. Names missing from
        ``params`` fall back to the module's own tensors, as in ``functional_call``.
        """
        weight, bias = self.head_names
        head = self[-1]
        return task_linear(
            self.features_with(params, x),
            params.get(weight, head.weight),
            params.get(bias, head.bias),
        )

    @property
    def head_names(self) -> tuple[str, str]:
        """The head's parameter names (weight, bias): the last linear layer.

        Methods that adapt only the head (ANIL) or use the rest of the network as an
        embedding (Prototypical Networks) split the network here; see `features_with`.
        """
        last = str(len(self) - 1)
        return (f"{last}.weight", f"{last}.bias")

    def features_with(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """The network up to its head (the body): ``x (T, N, in)`` -> ``(T, N, F)``.

        ``forward_with(params, x)`` equals ``task_linear(features_with(params, x),
        params[w], params[b])`` with ``(w, b) = head_names``; the head's entries of
        ``params`` are not used (they may be missing).
        """
        for name, layer in list(self.named_children())[:-1]:
            if isinstance(layer, TaskLinear):
                x = task_linear(
                    x,
                    params.get(f"{name}.weight", layer.weight),
                    params.get(f"{name}.bias", layer.bias),
                )
            else:
                x = layer(x)
        return x

    # The inner loop's layout (mamlbook.functional.adapt): every product is x Wᵀ + b, so
    # the loop keeps Wᵀ and b as a row. That saves two view operations per layer per
    # step, and their derivatives in the meta-backward: about 15% of a MAML step here.
    def matmul_layout(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Task-batched ``params`` as the products use them (views, no copies):
        ``weight (T, out, in)`` -> ``(T, in, out)``, ``bias (T, out)`` ->
        ``(T, 1, out)``."""
        return {
            k: v.transpose(1, 2) if k.endswith("weight") else v.unsqueeze(1)
            for k, v in params.items()
        }

    def standard_layout(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Inverse of `matmul_layout` (views)."""
        return {
            k: v.transpose(1, 2) if k.endswith("weight") else v.squeeze(1)
            for k, v in params.items()
        }

    def forward_matmul(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """`forward_with` for parameters in `matmul_layout`: ``x (T, N, in)`` ->
        ``(T, N, out)``."""
        for name, layer in self.named_children():
            if isinstance(layer, TaskLinear):
                x = torch.baddbmm(params[f"{name}.bias"], x, params[f"{name}.weight"])
            else:
                x = layer(x)
        return x

    @property
    def architecture(self) -> str:
        """A string that identifies the shape of the network (stored in checkpoints)."""
        return f"SinusoidMLP(hidden={self.hidden})"
