"""The speed path: how the same meta-steps run faster, kept apart from the mathematics.

The algorithm files (`mamlbook.algorithms`) and `mamlbook.functional` hold the
equations and never import this package. It is reached through one switch per use:

* `compile_method` (`mamlbook.performance.compiled`): the meta-step under
  ``torch.compile``, one fused graph; ``mb.meta_train(..., compile=True)`` or
  ``python -m mamlbook train --compile``. Equal to eager up to float rounding.
* `mamlbook.performance.distributed`: the meta-batch sharded over processes
  (``torchrun ... -m mamlbook train --distributed``). Equal to one process up to the
  order of floating-point sums.

The Performance appendix measures both (``benchmarks/throughput.py``).
"""

from .compiled import compile_method

__all__ = ["compile_method"]
