"""Task families: each samples meta-batches as a `TaskBatch` from a ``torch.Generator``."""
from .base import TaskBatch
from .sinusoid import SinusoidTasks

__all__ = ["TaskBatch", "SinusoidTasks"]
