"""Task families: each samples meta-batches as a `TaskBatch` from a ``torch.Generator``."""
from .base import TaskBatch
from .sinusoid import SinusoidTasks

__all__ = ["TaskBatch", "SinusoidTasks"]

# Few-shot classification (issue 6)
from .classification import ClassificationTasks
from .glyphs import load_glyphs
from .omniglot import load_omniglot

__all__ += ["ClassificationTasks", "load_glyphs", "load_omniglot"]
