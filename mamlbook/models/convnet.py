"""The MAML paper's few-shot image classifier: four conv blocks and a linear head.

Each block is ``Conv2d(3×3, padding 1) → BatchNorm2d → ReLU → MaxPool2d(2)`` (Finn et
al. 2017, §5.2, after Vinyals et al. 2016); a 28×28 image shrinks 28 → 14 → 7 → 3 → 1,
so the head sees ``filters`` features and maps them to ``ways`` logits.

Batch norm and meta-learning
----------------------------
Every `nn.BatchNorm2d` here has ``track_running_stats=False``: it *always* normalises
with the statistics of the batch it is given and keeps no running averages. Run
through `mamlbook.functional.task_forward` (``torch.func.vmap`` over tasks), the batch
of each task is that task's own support set, or its own query set, so

* statistics never mix tasks of a meta-batch (the result for a task does not depend on
  the other tasks it is batched with);
* nothing is updated as a side effect of an inner-loop step (no buffers), so
  differentiating through the inner loop sees exactly the function that was run;
* training and evaluation use the same function (there is no ``eval()`` mode to forget
  or to mismatch).

This is what the MAML reference code does. It is *transductive*: a query image's
prediction depends on the other query images of its task through the batch statistics
(Nichol et al. 2018 report Reptile both with and without it). The scale and shift of
each batch norm (``weight``, ``bias``) are ordinary parameters: meta-learned and
adapted like the convolutions.

How a meta-batch runs (the ``meta_batch`` switch)
-------------------------------------------------
`mamlbook.task_forward` hands the network task-batched parameters ``(T, ...)`` and
images ``(T, N, C, H, W)``; `ConvNet.forward_with` runs them in one of two ways, the
same numbers either way (up to float rounding; the tests compare both with a plain
per-task loop in float64):

* ``"loop"``: one task at a time, plain ``conv2d``/``batch_norm``/``max_pool2d`` with
  that task's weights, outputs stacked. Autograd sees ``T`` ordinary convolutions,
  whose backward and double backward are the fast dense kernels.
* ``"vmap"``: ``torch.func.vmap`` over tasks. A convolution with a different weight
  per task becomes one *grouped* convolution (``groups = T``). On a GPU that is one big
  kernel instead of ``T`` small ones; on a CPU the backward of a grouped convolution is
  slower than that of ``T`` dense ones, and the batched step runs at a third to three
  quarters of a Python loop's speed (`benchmarks/conv_step.py`; the Performance
  appendix prints the measurements).
* ``"auto"`` (the default): ``"loop"`` on a CPU, ``"vmap"`` elsewhere.

Set it per network (``ConvNet(..., meta_batch="loop")`` or ``net.meta_batch = ...``);
`benchmarks/conv_step.py` measures the choices.

Channels-last activations (the ``channels_last`` switch)
--------------------------------------------------------
``ConvNet(..., channels_last=True)`` gives the images and the first block's filters
channels-last strides (``(M, H, W, C)`` in memory), so that the first convolution's
output, and every later activation and gradient, is channels-last, on the per-task
path of `forward_with` and `features_with` (the ``"loop"`` mode, what the methods run
on a CPU), for every per-task batch of at least ``channels_last_min_examples`` (by
default 32) images: with the paper's 15 query images per class, the query sets, and
not the support sets of one or a few images per class (but a 20-way 5-shot support
set, or Reptile's support and query sets together, is large enough). Batch norm and
max-pooling then run on channels-last tensors, where PyTorch's CPU max-pooling is much
faster, but its batch norm sums sequentially, with a float32 error three orders of
magnitude above the default layout's; on small batches, which the inner loop
differentiates twice, the layout gains less and costs more. `benchmarks/conv_profile.py`
measures batch norm's error in both layouts, `benchmarks/conv_step.py` times the steps
(every batch channels-last among them) and scores each one's float32 meta-gradient
against a float64 loop; the Performance appendix prints both. The book's recipes train on one query
drawing per class (5, 20 or 25 images), so the switch leaves them as they are.
``forward`` itself, and so ``functional_call`` and the ``"vmap"`` mode, keep the
default layout, which every ``torch.func`` transform supports. A one-channel image
(Omniglot's) counts as contiguous in both layouts, so
``contiguous(memory_format=torch.channels_last)`` leaves its NCHW strides, the first
convolution then answers in NCHW and its backward copies every gradient back; the
switch relabels the strides with a view instead (`_channels_last`). The numbers are
the same up to float rounding (tested in float64 against the plain loop), but not bit
for bit, so it is off by default: the shipped checkpoints were trained, and
regenerate, without it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from .. import checks

META_BATCH_MODES = ("auto", "loop", "vmap")


class ConvNet(nn.Module):
    """``blocks`` conv blocks of ``filters`` 3×3 filters with batch norm, then ``Linear(filters', ways)``.

    Input ``(M, channels, height, width)`` for one task (run a meta-batch with
    `mamlbook.task_forward`, parameters ``(T, ...)`` and inputs ``(T, M, channels,
    height, width)``); output logits ``(M, ways)``. ``image_size`` is the side of square
    images or ``(height, width)``, each side at least ``2**blocks``. The paper's network
    is ``ConvNet(ways, filters=64, blocks=4)`` (112,261 parameters for 5 ways); its
    mini-ImageNet network is ``ConvNet(ways, filters=32, channels=3, image_size=84)``.

    >>> net = ConvNet(ways=5)
    >>> net(torch.zeros(10, 1, 28, 28)).shape
    torch.Size([10, 5])
    """

    task_batched = True  # mamlbook.task_forward calls forward_with(params, x) for a meta-batch

    def __init__(self, ways: int = 5, filters: int = 64, blocks: int = 4, channels: int = 1,
                 image_size: int | tuple[int, int] = 28,
                 *, meta_batch: str = "auto", channels_last: bool = False, channels_last_min_examples: int = 32):
        super().__init__()
        self.meta_batch = meta_batch
        self.channels_last = channels_last
        self.channels_last_min_examples = channels_last_min_examples
        self.ways = checks.positive_int("ways", ways)
        self.filters = checks.positive_int("filters", filters)
        self.blocks = checks.positive_int("blocks", blocks)
        self.channels = checks.positive_int("channels", channels)
        height, width = checks.image_size("image_size", image_size)
        # equal sides give the side, so that (28, 28) and 28 name one architecture (checkpoints compare it)
        self.image_size = height if height == width else (height, width)
        if min(height, width) < 2 ** blocks:
            raise ValueError(f"image_size must be at least 2**blocks = {2 ** blocks} on each side for {blocks} "
                             f"blocks, got {image_size}")
        layers: list[nn.Module] = []
        fan_in = channels
        for _ in range(blocks):
            layers += [nn.Conv2d(fan_in, filters, 3, padding=1),
                       nn.BatchNorm2d(filters, track_running_stats=False),
                       nn.ReLU(),
                       nn.MaxPool2d(2)]
            fan_in = filters
        self.features = nn.Sequential(*layers)
        for _ in range(blocks):
            height, width = height // 2, width // 2
        self.head = nn.Linear(filters * height * width, ways)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"x must be (examples, channels, height, width) for one task, got shape {tuple(x.shape)}; "
                             "run a meta-batch through mamlbook.task_forward")
        return self.head(self.features(x).flatten(1))

    @property
    def meta_batch(self) -> str:
        """How a meta-batch runs: ``"auto"``, ``"loop"`` or ``"vmap"`` (checked when set)."""
        return self._meta_batch

    @meta_batch.setter
    def meta_batch(self, value: str) -> None:
        self._meta_batch = checks.one_of("meta_batch", value, set(META_BATCH_MODES))

    @property
    def channels_last(self) -> bool:
        """Whether the per-task path lays out activations channels-last (checked when set)."""
        return self._channels_last

    @channels_last.setter
    def channels_last(self, value: bool) -> None:
        self._channels_last = checks.flag("channels_last", value)

    @property
    def channels_last_min_examples(self) -> int:
        """With ``channels_last``, the smallest per-task batch laid out channels-last (32 by
        default: the paper's query sets of 15 images per class, not its support sets;
        see the module's docstring). Checked when set."""
        return self._channels_last_min_examples

    @channels_last_min_examples.setter
    def channels_last_min_examples(self, value: int) -> None:
        self._channels_last_min_examples = checks.positive_int("channels_last_min_examples", value)

    def meta_batch_mode(self, device: torch.device) -> str:
        """``"loop"`` or ``"vmap"``: how `forward_with` runs a meta-batch on ``device``."""
        if self.meta_batch == "auto":
            return "loop" if torch.device(device).type == "cpu" else "vmap"
        return self.meta_batch

    def forward_with(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """The network with task-batched ``params`` ``(T, ...)`` on ``x (T, N, C, H, W)`` -> ``(T, N, ways)``.

        Names missing from ``params`` use the module's own tensors (shared by all tasks).
        """
        full = self._task_params(params, x)
        if self.meta_batch_mode(x.device) == "vmap":
            return vmap(lambda p, xt: functional_call(self, p, (xt,)))(full, x)
        return torch.stack([self._forward_one(task_params, x_task, self.channels_last)
                            for task_params, x_task in zip(_unbind_tasks(full), x.unbind())])

    def _task_params(self, params: dict[str, Tensor], x: Tensor, skip: tuple[str, ...] = ()) -> dict[str, Tensor]:
        """Every parameter of the module but ``skip``, for the ``T`` tasks of ``x (T, N, C,
        H, W)``: ``params[k]`` ``(T, ...)`` where given, else the module's own tensor
        expanded (shared by all tasks); a given tensor that is not ``(T, ...)`` is refused
        (both modes: the loop would silently run the first ``T`` tasks of a larger batch)."""
        if x.ndim != 5:
            raise ValueError(f"x must be (tasks, examples, channels, height, width), got shape {tuple(x.shape)}")
        t = x.shape[0]
        wrong = {k: tuple(v.shape) for k, v in params.items() if k not in skip and (v.ndim == 0 or v.shape[0] != t)}
        if wrong:
            raise ValueError(f"task-batched params must have x's {t} tasks as their first dimension, got "
                             + ", ".join(f"{k} {shape}" for k, shape in wrong.items()))
        return {k: params[k] if k in params else v.expand(t, *v.shape)
                for k, v in self.named_parameters() if k not in skip}

    def _forward_one(self, params: dict[str, Tensor], x: Tensor, channels_last: bool = False) -> Tensor:
        """``forward`` of one task with the weights in ``params`` (the ``"loop"`` path;
        ``channels_last``: the activations' memory layout, not their values)."""
        features = self._features_one(params, x, channels_last)
        return nn.functional.linear(features, params["head.weight"], params["head.bias"])

    def _features_one(self, params: dict[str, Tensor], x: Tensor, channels_last: bool = False) -> Tensor:
        """The body of one task, ``(M, C, H, W)`` -> ``(M, F)`` (the ``"loop"`` path;
        ``channels_last``: the activations' memory layout, not their values)."""
        functional = nn.functional
        channels_last = channels_last and x.shape[0] >= self.channels_last_min_examples
        for i in range(self.blocks):
            conv, norm = f"features.{4 * i}", f"features.{4 * i + 1}"
            weight = params[f"{conv}.weight"]
            if channels_last and i == 0:  # the later layers' tensors follow the first convolution's
                x, weight = _channels_last(x), _channels_last(weight)
            x = functional.conv2d(x, weight, params[f"{conv}.bias"], padding=1)
            x = functional.batch_norm(x, None, None, params[f"{norm}.weight"], params[f"{norm}.bias"], training=True)
            # max-pool before ReLU: the same numbers and gradients (ReLU is monotone, so the
            # two commute exactly), with the ReLU on a quarter of the values
            x = functional.relu(functional.max_pool2d(x, 2))
        return x.flatten(1)

    #: The head's parameter names (weight, bias): ANIL adapts only these, Prototypical
    #: Networks use the body before them as the embedding (see `features_with`).
    head_names = ("head.weight", "head.bias")

    def features_with(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """The body (conv blocks, flattened) with task-batched ``params``: ``x (T, N, C, H, W)`` -> ``(T, N, F)``.

        ``forward_with(params, x)`` is ``features_with(params, x) Wᵀ + b`` with the head's
        ``W, b``; entries of ``params`` for the head are not used (they may be missing),
        and names missing from ``params`` use the module's own tensors.
        """
        body = self._task_params(params, x, skip=self.head_names)
        if self.meta_batch_mode(x.device) == "vmap":
            return vmap(self._features_one)(body, x)
        return torch.stack([self._features_one(task_params, x_task, self.channels_last)
                            for task_params, x_task in zip(_unbind_tasks(body), x.unbind())])

    @property
    def settings(self) -> dict:
        """The constructor's arguments, switches included: ``ConvNet(**{**net.settings,
        "ways": 20})`` is a network like ``net`` (fresh weights) with 20 ways."""
        return {"ways": self.ways, "filters": self.filters, "blocks": self.blocks, "channels": self.channels,
                "image_size": self.image_size, "meta_batch": self.meta_batch,
                "channels_last": self.channels_last, "channels_last_min_examples": self.channels_last_min_examples}

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the images (``image_size`` is one side for square ones)."""
        size = self.image_size
        return (size, size) if isinstance(size, int) else size

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One example's input, ``(channels, height, width)`` (checked by the methods)."""
        return (self.channels, *self.image_shape)

    @property
    def architecture(self) -> str:
        """A string that identifies the shape of the network (stored in checkpoints)."""
        settings, shape = self.settings, ("ways", "filters", "blocks", "channels", "image_size")  # not the switches
        return "ConvNet(" + ", ".join(f"{key}={settings[key]}" for key in shape) + ")"


def _unbind_tasks(params: dict[str, Tensor]) -> list[dict[str, Tensor]]:
    """Task-batched ``params`` ``(T, ...)`` as ``T`` dicts of one task's tensors.

    ``unbind`` rather than ``v[i]``: autograd then stacks the ``T`` tasks' gradients
    into one ``(T, ...)`` tensor per parameter, where indexing gives every task a
    zero-filled ``(T, ...)`` tensor of its own, to be summed (``T²`` work). The same
    gradients bit for bit (tests/test_conv_step.py); the second-order step on one
    thread 1.02× to 1.09× faster (5- and 20-way, 8 and 32 tasks, one run:
    ``benchmarks/task_split.py --rows 5,8 5,32 20,8 20,32``)."""
    per_task = zip(*(v.unbind() for v in params.values()))
    return [dict(zip(params, tensors)) for tensors in per_task]


def _channels_last(x: Tensor) -> Tensor:
    """``x (N, C, H, W)`` with channels-last strides, the same values (differentiable).

    A one-channel tensor is already "contiguous" in both layouts, so
    ``contiguous(memory_format=torch.channels_last)`` returns it with NCHW strides,
    and a convolution on it gives NCHW output, whose backward then converts every
    channels-last gradient back (a copy of the first block's activations, twice per
    task); the view below gives it channels-last strides without a copy."""
    if x.shape[1] == 1:
        n, _, height, width = x.shape
        return x.reshape(n, height, width, 1).permute(0, 3, 1, 2)
    return x.contiguous(memory_format=torch.channels_last)


def accuracy_per_task(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of correct predictions of each task: logits ``(T, M, ways)``, labels ``(T, M)`` -> ``(T,)``."""
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (T, M, ways) and labels (T, M), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    if not bool(torch.isfinite(logits).all()):  # argmax would pick the NaN: a chance-like score from nothing
        raise ValueError("logits contains NaN/inf values; their accuracy would look like chance, not an error")
    # a label >= ways is never the argmax: it would score 0 without a word
    checks.class_labels("labels", labels, logits.shape[-1])
    return (logits.argmax(-1) == labels).to(logits.dtype).mean(1)
