"""The transfer baseline of chapter 10: a classifier of every training class, then class means.

Episodes are not the only way to prepare a network for few-shot tasks. Train chapter
08's `ConvNet` as an ordinary classifier of all the training classes at once, each
with its own label (the 136 training characters and their 90° rotations: 544 classes
of 20 drawings), as the "baseline" of Chen et al. (2019) and the embeddings of Tian
et al. (2020) are trained; then drop its head. A new task is solved by the
body's features alone, with no gradient step (eq. 10.7): each query image goes to the
class whose mean support feature is most similar, both normalised to unit length,

    logit_n(x) = ⟨f(x)/‖f(x)‖, c_n/‖c_n‖⟩,
    c_n = the mean of f(x_j)/‖f(x_j)‖ over the support images x_j of class n,

the rule of Prototypical Networks (eq. 10.6) with cosine similarity for −‖·‖². As
every network of chapter 08, the body normalises each set it is given (support, query)
with that set's own batch statistics.

``python -m mamlbook.transfer_baseline`` trains it (`RECIPE`, on the CPU as shipped:
`mamlbook.device.reproducible_cpu`), writes ``mamlbook/pretrained/transfer/omniglot_transfer.pt``
and scores it on chapter 08's tasks beside chapter 08's MAML networks, paired, into
``mamlbook/results/transfer_baseline.json`` (``--out DIR``: both into ``DIR`` instead);
``--score-only`` re-scores the shipped network.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from . import checkpoints, checks, protocol
from .algorithms.protonet import check_labels, prototypes
from .device import cpu_name, reproducible_cpu, seed_everything
from .models import ConvNet, accuracy_per_task
from .tasks import TaskBatch
from .tasks.classification import shift_images
from .tasks.omniglot_shipped import minimal_split

#: A folder of its own: the shipped checkpoints beside it are the recipes' (`mamlbook.recipes`).
CHECKPOINT = checkpoints.PRETRAINED_DIR / "transfer" / "omniglot_transfer.pt"
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "transfer_baseline.json"
ROTATIONS = 4  # 0°, 90°, 180°, 270°: each a class of its own, as in the meta-training of chapter 08


@dataclass(frozen=True)
class TransferRecipe:
    """How the shipped network was trained: ``epochs`` passes over every training drawing
    in shuffled mini-batches of ``batch_size``, each drawing moved by a random offset of
    up to ``max_shift`` pixels (as chapter 08's headline MAML networks saw theirs), Adam
    with learning rate ``lr``, from ``seed``; a ``filters``-filter `ConvNet` (chapter
    08's), ``curve_every`` epochs between scores on the held-out curve tasks."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    max_shift: int = 2
    filters: int = 32
    seed: int = 0
    curve_every: int = 5

    def __post_init__(self):
        for name in ("epochs", "batch_size", "filters", "curve_every"):
            checks.positive_int(name, getattr(self, name))
        checks.positive_float("lr", self.lr)
        checks.int_in_range("max_shift", self.max_shift, 0, 27)
        checks.int_in_range("seed", self.seed, 0)


RECIPE = TransferRecipe()


def training_set() -> tuple[Tensor, Tensor]:
    """Every training drawing as a labelled image: ``x (544·20, 1, 28, 28)`` in [0, 1] and
    ``y (544·20,)``, class ``r·136 + c`` the character ``c`` of the training split
    (`mamlbook.protocol.omniglot_tasks`) turned by ``r`` quarter turns."""
    images = minimal_split()[0].images.float() / 255  # (136, 20, 28, 28)
    turned = torch.cat([torch.rot90(images, r, dims=(-2, -1)) for r in range(ROTATIONS)])
    classes, drawings = turned.shape[:2]
    return turned.reshape(-1, 1, *turned.shape[-2:]), torch.arange(classes).repeat_interleave(drawings)


def cosine_logits(model: ConvNet, tasks: TaskBatch) -> Tensor:
    """Eq. (10.7): ``(T, Q, N)`` cosine similarities of each query image's features to each
    class's mean normalised support feature (`mamlbook.algorithms.protonet.prototypes`;
    the model's own parameters, its head not used). Every support set must hold every
    class (a class without a support image has no mean)."""
    checks.module("model", model)
    ways = check_labels(tasks)  # support and query labels
    with torch.no_grad():
        support = F.normalize(model.features_with({}, tasks.x_support), dim=-1)  # (T, S, F)
        query = F.normalize(model.features_with({}, tasks.x_query), dim=-1)  # (T, Q, F)
        means = prototypes(support, tasks.y_support, ways)  # (T, N, F)
        return query @ F.normalize(means, dim=-1).transpose(1, 2)


def accuracy(model: ConvNet, tasks: TaskBatch, chunk: int = 100) -> Tensor:
    """Query accuracy ``(T,)`` of eq. (10.7) on each task, ``chunk`` tasks at a time."""
    checks.positive_int("chunk", chunk)
    return torch.cat([accuracy_per_task(cosine_logits(model, part), part.y_query)
                      for part in tasks.split(max(1, -(-tasks.num_tasks // chunk)))])


def train(recipe: TransferRecipe = RECIPE, *, progress: bool = True) -> tuple[ConvNet, dict]:
    """Train the classifier of every training class on the CPU; return it and its metadata:
    seconds, per-epoch mean loss and training accuracy, and the held-out curve (mean
    eq.-10.7 accuracy on the 500 fixed 5-way 1-shot curve tasks of chapter 08 every
    ``curve_every`` epochs, and before training)."""
    if not isinstance(recipe, TransferRecipe):
        raise TypeError(f"recipe must be a TransferRecipe, got {type(recipe).__name__}")
    from .recipes.runs import run_provenance

    provenance = run_provenance("omniglot")  # version, commit, data: taken before the run
    x, y = training_set()
    # chapter 08's curve tasks (`mamlbook.recipes`): its 1-shot networks' curves were scored on the same 500
    curve_tasks = protocol.held_out_tasks(1, num_tasks=protocol.CURVE_TASKS, query_shots=1,
                                          seed=protocol.EVAL_SEED + 1)
    with reproducible_cpu(torch.device("cpu")):
        generator = seed_everything(recipe.seed)
        model = ConvNet(int(y.max()) + 1, filters=recipe.filters)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)

        def held_out() -> float:
            return round(float(accuracy(model, curve_tasks).mean()), 6)

        meta = {"loss": [], "train_accuracy": [], "curve": [[0, 0.0, held_out()]]}
        seconds = 0.0
        for epoch in tqdm(range(recipe.epochs), desc="transfer baseline", disable=not progress, delay=0.5):
            start, total, correct = time.perf_counter(), 0.0, 0
            for batch in torch.randperm(len(y), generator=generator).split(recipe.batch_size):
                images = x[batch]
                if recipe.max_shift:
                    offsets = torch.randint(-recipe.max_shift, recipe.max_shift + 1, (len(batch), 1, 2),
                                            generator=generator)
                    images = shift_images(images, offsets)
                logits = model(images)
                loss = F.cross_entropy(logits, y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
                correct += int((logits.argmax(1) == y[batch]).sum())
            seconds += time.perf_counter() - start
            meta["loss"].append(round(total / len(y), 6))
            meta["train_accuracy"].append(round(correct / len(y), 6))
            if (epoch + 1) % recipe.curve_every == 0 or epoch + 1 == recipe.epochs:
                meta["curve"].append([epoch + 1, round(seconds, 1), held_out()])
    meta.update(recipe=asdict(recipe), seconds=round(seconds, 1), threads=1, cpu=cpu_name(),
                torch=str(torch.__version__), created=time.strftime("%Y-%m-%d"), **provenance)
    return model, meta


def load(path: str | Path = CHECKPOINT) -> tuple[ConvNet, dict]:
    """The shipped network (`CHECKPOINT`, trained from `RECIPE`), or one at ``path``, and
    its metadata."""
    model = ConvNet(ROTATIONS * len(minimal_split()[0]), filters=RECIPE.filters)
    _, meta = checkpoints.load_checkpoint(path, model)
    return model, meta


#: Which of chapter 08's headline MAML networks (`omniglot_results.HEADLINE`, seed 0's)
#: each setting compares with: the 1-shot and 5-shot ones on 5-way tasks, the 20-way one
#: on 20-way tasks.
MAML_ROW_FOR = {"5w1s": "MAML, 1-shot", "5w5s": "MAML, 5-shot", "20w1s": "MAML, 20-way", "lake20": "MAML, 20-way"}


def maml_for(setting: str) -> str:
    """The recipe name of the MAML network compared on ``setting`` (`MAML_ROW_FOR`)."""
    from .omniglot_results import HEADLINE

    return HEADLINE[MAML_ROW_FOR[setting]][0]


def compute(model: ConvNet, num_tasks: int | None = None) -> dict:
    """The baseline's accuracy on each of chapter 08's settings (`omniglot_results.setting_tasks`,
    as many tasks as its shipped table unless ``num_tasks``) and that of `maml_for` on the
    same tasks: summaries, the paired difference, and each task's number of correct query
    images (`omniglot_results.correct_per_task`, to compare exactly)."""
    from . import omniglot_results

    if num_tasks is None:
        num_tasks = json.loads(omniglot_results.RESULTS_PATH.read_text())["num_tasks"]
    result = {"num_tasks": num_tasks, "created": time.strftime("%Y-%m-%d %H:%M"), "settings": {}}
    for setting in MAML_ROW_FOR:
        tasks, maml = omniglot_results.setting_tasks(setting, num_tasks), maml_for(setting)
        ours = accuracy(model, tasks).double()
        theirs = omniglot_results.checkpoint_accuracy(maml, tasks)
        result["settings"][setting] = {
            "transfer": omniglot_results.summary(ours), "maml": maml, "maml_summary": omniglot_results.summary(theirs),
            "paired": omniglot_results.paired(ours, theirs),
            "transfer_correct": omniglot_results.correct_per_task(ours, tasks),
            "maml_correct": omniglot_results.correct_per_task(theirs, tasks)}
        print(f"{setting:>6}: transfer {100 * float(ours.mean()):.2f}%, {maml} {100 * float(theirs.mean()):.2f}%",
              flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m mamlbook.transfer_baseline [--score-only] [--out DIR]``: exit status 0
    done, 2 an invalid argument."""
    from .cli_parser import ScriptParser

    parser = ScriptParser(prog="python -m mamlbook.transfer_baseline",
                          description=f"Train chapter 10's transfer baseline (RECIPE, about five minutes on one CPU "
                                      f"core), write {CHECKPOINT.name}, and score it on chapter 08's tasks beside "
                                      f"its MAML networks ({RESULTS_PATH.name}; a few minutes more).")
    parser.add_argument("--score-only", action="store_true", help="re-score the shipped network, do not train")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write the checkpoint and the results into this existing folder, not over the shipped "
                             "files")
    args = parser.parse_args(argv)
    if args.out is not None and not Path(args.out).is_dir():
        parser.error(f"argument --out: must be an existing folder, got {args.out!r}")
    checkpoint = CHECKPOINT if args.out is None else Path(args.out) / CHECKPOINT.name
    results = RESULTS_PATH if args.out is None else Path(args.out) / RESULTS_PATH.name
    if args.score_only:
        model, _ = load()
    else:
        model, meta = train()
        checkpoint.parent.mkdir(exist_ok=True)
        checkpoints.save_checkpoint(checkpoint, model, metadata=meta)
        print(f"wrote {checkpoint} ({meta['seconds']:.0f} s of training)")
    with reproducible_cpu(torch.device("cpu")):
        result = compute(model)
    result["command"] = "python -m mamlbook.transfer_baseline " + " ".join(sys.argv[1:] if argv is None else argv)
    results.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
