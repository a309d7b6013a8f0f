"""The speed path: how the same meta-steps run faster, kept apart from the mathematics.

The algorithm files (`mamlbook.algorithms`) and `mamlbook.functional` hold the
equations and never import this package. It is reached through one switch per use:

* `compile_method` (`mamlbook.performance.compiled`): the meta-step under
  ``torch.compile``, one fused graph; ``mb.meta_train(..., compile=True)`` or
  ``python -m mamlbook train --compile``. Equal to eager up to float rounding.
* `mamlbook.performance.distributed`: the meta-batch sharded over processes
  (``torchrun ... -m mamlbook train --distributed``). Equal to one process up to the
  order of floating-point sums.
* `mamlbook.performance.threaded`: the meta-batch split over threads of one process,
  one intra-op thread each, the CPU's path for the conv net
  (``mb.meta_train(..., task_threads=2)``, ``python -m mamlbook regenerate NAME
  --task-threads 2``). Equal to the plain step up to the order of floating-point sums.

The Performance appendix measures the first two (``benchmarks/throughput.py``),
and the third, on chapter 08's network (``benchmarks/conv_step.py``).
"""

from .compiled import compile_method

#: The conv meta-step's implementations, as `benchmarks/conv_step.py` stores them in
#: ``mamlbook/results/conv_step.json``, and the short name each goes by in that
#: script's console table and in the Performance appendix's (one spelling for both).
CONV_STEP_LABELS = {"loop": "loop", "before": "vmap", "after": "package", "threaded": "threads",
                    "channels_last": "c-last", "channels_last_all": "c-all", "threaded_channels_last": "both"}

__all__ = ["CONV_STEP_LABELS", "compile_method"]
