"""Command line: ``python -m mamlbook regenerate NAME|all``."""
from __future__ import annotations

import argparse
import sys

from .recipes import RECIPES, regenerate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mamlbook", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    regen = sub.add_parser("regenerate", help="retrain a checkpoint shipped with the book")
    regen.add_argument("name", choices=sorted(RECIPES) + ["all"])
    regen.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    regen.add_argument("--iterations", type=int, default=None, help="override the recipe (for a quick try)")
    args = parser.parse_args(argv)
    if args.command == "regenerate":
        for name in sorted(RECIPES) if args.name == "all" else [args.name]:
            meta = regenerate(name, device=args.device, iterations=args.iterations)
            print(f"{name}: {meta['seconds']:.0f} s, final meta-loss {meta['final_meta_loss_mean_last_1000']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
