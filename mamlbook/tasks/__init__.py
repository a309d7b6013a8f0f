"""Task families: each samples meta-batches as a `TaskBatch` from a ``torch.Generator``."""
from .base import TaskBatch
from .sinusoid import SinusoidTasks

__all__ = ["TaskBatch", "SinusoidTasks"]

# Few-shot classification (issue 6)
from .classification import ClassificationTasks
from .image_folder import load_image_folder
from .omniglot import load_omniglot
from .omniglot_shipped import load_runs, minimal_split

__all__ += ["ClassificationTasks", "load_image_folder", "load_omniglot", "minimal_split", "load_runs"]
