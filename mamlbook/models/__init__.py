"""The networks, with layers that accept task-batched parameters.

* `sinusoid` (`SinusoidMLP`, `TaskLinear`, `task_linear`): the MAML paper's 1-40-40-1
  regressor, chapters 01-07 and 09.
* `convnet` (`ConvNet`, `accuracy_per_task`): its few-shot image classifier, four conv
  blocks and a linear head, chapters 08 and 10.

Both take ``(T, ...)`` parameters through `mamlbook.functional.task_forward`, declare
their head (``head_names``, ``features_with``) for the methods that adapt only the head
or embed with the body, and their ``architecture`` string (checked when a checkpoint
is loaded).
"""

from .convnet import ConvNet, accuracy_per_task
from .sinusoid import SinusoidMLP, TaskLinear, task_linear

__all__ = ["SinusoidMLP", "TaskLinear", "task_linear", "ConvNet", "accuracy_per_task"]
