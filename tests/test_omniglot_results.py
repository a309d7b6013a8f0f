"""Chapter 08's shipped results table against what it claims to be."""
import json

import pytest
import torch

import mamlbook as mb
from mamlbook import omniglot_results


def test_every_row_is_a_shipped_recipe_scored_on_every_setting():
    table = mb.results.load("omniglot_results")
    for row, values in table["rows"].items():
        assert row == "pixel_nn" or (mb.checkpoints.PRETRAINED_DIR / f"{row}.pt").is_file(), row
        assert set(values) == {"5w1s", "5w5s", "20w1s", "lake20"}, row
        assert all(v["tasks"] == (20 if s == "lake20" else table["num_tasks"]) for s, v in values.items())
    assert set(table["paired_vs_nn"]) == set(table["rows"]) - {"pixel_nn"}


def test_the_pixel_baseline_row_is_recomputed_on_the_same_tasks():
    table = mb.results.load("omniglot_results")
    for setting in ("5w1s", "20w1s", "lake20"):
        tasks = omniglot_results.setting_tasks(setting, table["num_tasks"])
        fresh = omniglot_results.summary(omniglot_results.pixel_nearest_neighbour(tasks))
        assert fresh == table["rows"]["pixel_nn"][setting], setting


def test_widened_head_starts_every_class_equal():
    torch.manual_seed(0)
    net = mb.ConvNet(ways=5, filters=8)
    params = {k: v.detach() for k, v in net.named_parameters()}
    wide, wide_params = omniglot_results.widen_head(net, params, 20)
    x = torch.rand(2, 20, 1, 28, 28)
    logits = mb.task_forward(wide, mb.batch_parameters(wide_params, 2), x)
    assert logits.shape == (2, 20, 20)
    assert torch.allclose(logits, logits[..., :1].expand_as(logits), atol=1e-5)
    # the copy runs the meta-batch as the network does (mode and memory layout)
    net = mb.ConvNet(ways=5, filters=8, meta_batch="vmap", channels_last=True, channels_last_min_examples=5)
    wide, _ = omniglot_results.widen_head(net, params, 20)
    assert (wide.meta_batch, wide.channels_last, wide.channels_last_min_examples) == ("vmap", True, 5)


def _image_keys(images):  # uint8 (..., H, W) -> set of byte strings, one per image
    return {bytes(im.numpy()) for im in images.reshape(-1, *images.shape[-2:])}


def test_probe_tasks_come_from_the_training_alphabets_only():
    from mamlbook.tasks.omniglot_shipped import minimal_split

    train, test = minimal_split()
    tasks = omniglot_results.setting_tasks("train20w1s", 5)
    assert tasks.x_support.shape == (5, 20, 1, 28, 28)
    drawn = _image_keys((tasks.x_support * 255).round().to(torch.uint8)[:, :, 0])
    assert drawn <= _image_keys(train.images)
    assert not drawn & _image_keys(test.images)


def test_wide_steps_changes_only_the_widened_head_adaptation():
    tasks = omniglot_results.setting_tasks("5w1s", 4)
    name = "omniglot_maml_1shot"
    # a 5-way network on 5-way tasks adapts with its recipe's steps, whatever wide_steps says
    assert torch.equal(omniglot_results.checkpoint_logits(name, tasks, 1),
                       omniglot_results.checkpoint_logits(name, tasks, 50))
    wide = omniglot_results.setting_tasks("20w1s", 2)
    assert not torch.allclose(omniglot_results.checkpoint_logits(name, wide, 10),
                              omniglot_results.checkpoint_logits(name, wide, 11))
    with pytest.raises(ValueError, match="wide_steps"):
        omniglot_results.checkpoint_logits(name, wide, 0)


def test_shipped_wide_steps_probe_matches_its_claims():
    probe = mb.results.load("omniglot_wide_steps")
    assert probe["command"].startswith("python -m mamlbook.omniglot_results")
    for name, row in probe["rows"].items():
        assert (mb.checkpoints.PRETRAINED_DIR / f"{name}.pt").is_file(), name
        assert list(row["train20w1s"]) == [str(k) for k in probe["steps"]]
        assert all(v["tasks"] == probe["probe_tasks"] for v in row["train20w1s"].values())
        assert row["20w1s"]["tasks"] == probe["num_tasks"] and row["lake20"]["tasks"] == 20


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "1"], "argument --tasks: must be an integer in [2, 10_000], got 1"),
    (["--tasks", "9" * 20], "argument --tasks: must be an integer in [2, 10_000]"),
    # argparse's "invalid int value" said no range; int() took "5_0" as 50
    (["--tasks", "abc"], "argument --tasks: must be an integer in [2, 10_000], got 'abc'"),
    (["--tasks", "5_0"], "argument --tasks: must be an integer in [2, 10_000], got '5_0'"),
    (["--wide-steps-probe", "--recipes", "omniglot_maml_1shot", "nope"], "--recipes: must name Omniglot recipes"),
    (["--recipes", "sinusoid_maml"], "--recipes: must name Omniglot recipes"),
    (["--recipes", "omniglot_maml_1shot", "--out", "."], "argument --out: must be a file in an existing folder"),
    (["--recipes", "omniglot_maml_1shot", "--out", "/nonexistent-folder/o.json"], "argument --out"),
    (["--imaml-directions", "--recipes", "omniglot_maml_1shot", "--tasks", "16"],
     "--imaml-directions needs an iMAML recipe"),
    (["--test-steps-probe", "--recipes", "omniglot_reptile_1shot"], "names must be 5-way MAML Omniglot recipes"),
    (["--imaml-directions", "--merge"], "--imaml-directions takes at most one recipe"),
    (["--imaml-directions", "--tasks=20"], "--tasks must be a multiple of 16"),
    (["--test-steps-probe", "--merge"], "--test-steps-probe needs --recipes"),
    (["--test-steps-probe", "--wide-steps-probe"], "got --test-steps-probe, --wide-steps-probe"),
    (["--training-fit", "--test-steps-probe", "--recipes", "omniglot_maml_1shot"], "choose at most one of"),
    (["--training-fit"], "--training-fit needs --recipes"),
    (["--training-fit", "--recipes", "omniglot_reptile_1shot"], "names must be 5-way MAML Omniglot recipes"),
    (["--training-fit", "--recipes", "omniglot_maml_1shot", "--settings", "5w1s"],
     "argument --settings: applies to the table, not to --training-fit"),
    # checked before --merge reads its file or says it will write one
    (["--imaml-directions", "--merge", "--tasks", "32"], "--imaml-directions takes at most one recipe"),
    (["--test-steps-probe", "--merge", "--out", "/tmp/mamlbook-no-such-results.json"],
     "--test-steps-probe needs --recipes"),
    (["--settings", "lake20"], "argument --settings: some settings only would make a table without the others"),
    (["--settings", "lake20", "--merge"], "argument --settings: some settings only need --recipes"),
    (["--settings", "lake20", "--merge", "--recipes", "omniglot_maml_1shot", "--out",
      "/tmp/mamlbook-no-such-results.json"], "argument --settings: some settings only are merged into an existing"),
    (["--settings", "lake21", "--merge"], "argument --settings: invalid choice"),
    (["--wide-steps-probe", "--settings", "lake20"], "argument --settings: applies to the table"),
])
def test_command_line_rejects_bad_arguments_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        omniglot_results.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "--merge:" not in err
    assert err.count("\n") == 1 and err.startswith("python -m mamlbook.omniglot_results: error: ")  # no usage block


@pytest.mark.parametrize("content", ["not json", '{"rows": {}}'])
def test_merge_refuses_a_file_that_is_not_its_results_before_scoring(content, tmp_path, capsys, monkeypatch):
    out = tmp_path / "results.json"
    out.write_text(content)
    monkeypatch.setattr(omniglot_results, "compute", lambda *a, **k: pytest.fail("scored before the check"))
    with pytest.raises(SystemExit) as exit_:
        omniglot_results.main(["--recipes", "omniglot_maml_1shot", "--merge", "--out", str(out)])
    assert exit_.value.code == 2 and "argument --merge" in capsys.readouterr().err and out.read_text() == content


def test_merge_of_some_settings_keeps_the_others(tmp_path, monkeypatch):
    """``--settings lake20 --merge`` replaces a recipe's Lake column and keeps its other
    settings (and the other rows), adding the command to the file's; a recipe whose row
    lacks the other settings is refused before scoring (its row would break the table)."""
    out = tmp_path / "results.json"
    full = {s: 1 for s in omniglot_results.TABLE_SETTINGS}
    old = {"num_tasks": 4, "command": "first",
           "rows": {"omniglot_maml_1shot": dict(full), "pixel_nn": dict(full), "b": {"lake20": 3}},
           "paired_vs_nn": {"omniglot_maml_1shot": dict(full)}}
    out.write_text(json.dumps(old))
    seen = {}

    def fake_compute(names, num_tasks, settings):
        seen.update(names=names, settings=settings)
        return {"rows": {"omniglot_maml_1shot": {"lake20": 20}, "pixel_nn": {"lake20": 30}},
                "paired_vs_nn": {"omniglot_maml_1shot": {"lake20": 50}}}

    monkeypatch.setattr(omniglot_results, "compute", fake_compute)
    argv = ["--tasks", "4", "--recipes", "omniglot_maml_1shot", "--settings", "lake20", "--merge", "--out", str(out)]
    assert omniglot_results.main(argv) == 0
    new = json.loads(out.read_text())
    assert seen == {"names": ["omniglot_maml_1shot"], "settings": ("lake20",)}
    assert new["rows"] == {"omniglot_maml_1shot": {**full, "lake20": 20}, "pixel_nn": {**full, "lake20": 30},
                           "b": {"lake20": 3}}
    assert new["paired_vs_nn"] == {"omniglot_maml_1shot": {**full, "lake20": 50}}
    assert new["command"].startswith("first; python -m mamlbook.omniglot_results --tasks 4")
    before = out.read_text()
    monkeypatch.setattr(omniglot_results, "compute", lambda *a, **k: pytest.fail("scored before the check"))
    with pytest.raises(SystemExit) as exit_:
        omniglot_results.main(["--tasks", "4", "--recipes", "omniglot_maml_5shot", "--settings", "lake20",
                               "--merge", "--out", str(out)])
    assert exit_.value.code == 2 and out.read_text() == before


def test_wide_steps_probe_scores_each_number_of_steps_then_the_held_out_settings_with_the_largest():
    name = "omniglot_reptile_1shot_train10_long"
    probe = omniglot_results.wide_steps_probe([name], steps=(1, 3), num_tasks=2, probe_tasks=2)
    row = probe["rows"][name]
    assert list(row) == ["train20w1s", "20w1s", "lake20"] and list(row["train20w1s"]) == ["1", "3"]
    tasks = omniglot_results.setting_tasks("train20w1s", 2)
    for k in (1, 3):
        fresh = omniglot_results.summary(omniglot_results.checkpoint_accuracy(name, tasks, k))
        assert row["train20w1s"][str(k)] == fresh
    held_out = omniglot_results.setting_tasks("20w1s", 2)
    assert row["20w1s"] == omniglot_results.summary(omniglot_results.checkpoint_accuracy(name, held_out, 3))


def test_test_steps_probe_scores_training_then_test_tasks_and_chooses_by_the_training_ones():
    name = "omniglot_maml_1shot"
    probe = omniglot_results.test_steps_probe([name], steps=(1, 3), probe_tasks=3, test_tasks=4)
    row = probe["rows"][name]
    assert row["shots"] == 1 and row["query_images"] == 5
    test = mb.protocol.held_out_tasks(1, num_tasks=4)
    for k in (1, 3):
        fresh = omniglot_results.summary(mb.protocol.adapted_accuracy(
            *_loaded(name), test, method="maml", inner_lr=0.4, steps=k).double())
        assert row["test"][str(k)] == fresh
        assert sum(row["test_correct"][str(k)]) / 20 == pytest.approx(fresh["mean"] / 100)
    means = {k: row["train"][str(k)]["mean"] for k in (1, 3)}  # one network: its own means
    assert probe["chosen"] == {"1": 1 if means[1] >= max(means.values()) - 0.1 - 1e-9 else 3}
    for bad in ("omniglot_fomaml_1shot", "omniglot_maml_20way_1shot"):
        with pytest.raises(ValueError, match="names must be 5-way MAML Omniglot recipes"):
            omniglot_results.test_steps_probe([bad], steps=(1,), probe_tasks=2, test_tasks=2)
    for steps in ((0, 3), ()):
        with pytest.raises(ValueError, match="steps"):
            omniglot_results.test_steps_probe([name], steps=steps, probe_tasks=2, test_tasks=2)
    with pytest.raises(ValueError, match="probe_tasks"):
        omniglot_results.test_steps_probe([name], steps=(1,), probe_tasks=1, test_tasks=2)
    with pytest.raises(ValueError, match="steps is for tasks of the network's own 5 ways"):
        omniglot_results.checkpoint_logits(name, omniglot_results.setting_tasks("20w1s", 2), steps=3)


def _loaded(name):
    model, _ = mb.recipes.load(name, device="cpu")
    return model, {k: v.detach() for k, v in model.named_parameters()}


def test_shipped_test_steps_probe_matches_its_claims():
    probe = mb.results.load("omniglot_test_steps")
    assert probe["command"].startswith("python -m mamlbook.omniglot_results --test-steps-probe")
    for name, row in probe["rows"].items():
        recipe = mb.recipes.RECIPES[name]
        assert recipe.training.method == "maml" and row["shots"] == recipe.shots
        assert list(row["train"]) == list(row["test"]) == list(row["test_correct"]) == [str(k) for k in probe["steps"]]
        # the probe's test tasks are the recipe's own: at the recipe's steps it reproduces the
        # accuracy stored when the checkpoint was scored, task by task
        stored = mb.recipes.test_accuracy(name) * row["query_images"]
        assert row["test_correct"][str(recipe.test_steps)] == [round(v) for v in stored.tolist()]
        for k, correct in row["test_correct"].items():
            assert round(100 * sum(correct) / (len(correct) * row["query_images"]), 2) == row["test"][k]["mean"]
    assert probe["chosen"] == omniglot_results.chosen_test_steps(probe)


def test_test_steps_are_the_fewest_within_the_tolerance_of_the_best_on_training_tasks():
    def probe(train_means):  # two 1-shot networks, their training-character accuracy per steps
        rows = {n: {"shots": 1, "train": {str(k): {"mean": m} for k, m in means.items()}}
                for n, means in zip("ab", train_means)}
        return {"steps": [3, 10, 20], "tolerance": 0.1, "rows": rows}

    # averages 97.05, 97.2, 97.3: 10 is within 0.1 of the best (it is exactly 0.1 below)
    assert omniglot_results.chosen_test_steps(probe([{3: 96.9, 10: 97.2, 20: 97.2},
                                                     {3: 97.2, 10: 97.2, 20: 97.4}])) == {"1": 10}
    assert omniglot_results.chosen_test_steps(probe([{3: 97.0, 10: 97.2, 20: 97.5},
                                                     {3: 97.0, 10: 97.2, 20: 97.5}])) == {"1": 20}
    assert omniglot_results.chosen_test_steps(probe([{3: 98.0, 10: 97.0, 20: 97.0},
                                                     {3: 98.0, 10: 97.0, 20: 97.0}])) == {"1": 3}


def test_headline_rows_are_each_method_s_last_networks_one_per_seed():
    recipes = mb.recipes.RECIPES
    methods = {"MAML": "maml", "first-order MAML": "fomaml", "Reptile": "reptile", "iMAML": "imaml"}
    for label, names in omniglot_results.HEADLINE.items():
        if names == ("pixel_nn",):
            continue
        assert recipes[names[0]].training.method == methods[label.split(",")[0]], label
        assert [recipes[mb.recipes.lineage(n)[0]].seed for n in names] == list(range(len(names))), label  # seed 0, then 1
        assert all(recipes[n].training == recipes[names[0]].training for n in names), label  # same last run
        if "-shot" in label:  # "MAML, 5-shot": trained on 5-shot tasks at the end
            assert recipes[names[0]].training.support_shots == int(label.split(", ")[1].split("-")[0]), label
        if "-way" in label:
            assert recipes[names[0]].ways == int(label.split(", ")[1].split("-")[0]), label
        for name in names:  # the end of its chain: nothing continues it at its own shots and ways
            shots_ways = (recipes[name].training.support_shots, recipes[name].ways)
            assert not [r for r in recipes.values()
                        if r.init_from == name and (r.training.support_shots, r.ways) == shots_ways], name


def test_headline_is_the_shipped_table_s_rows():
    table = mb.results.load("omniglot_results")
    header, rows = omniglot_results.headline(table)
    assert tuple(header) == ("method", *omniglot_results.TABLE_SETTINGS) == ("method", "5w1s", "5w5s", "20w1s", "lake20")
    assert [row[0] for row in rows] == [*omniglot_results.HEADLINE, "widest ±"]
    for row, (label, names) in zip(rows, omniglot_results.HEADLINE.items(), strict=False):
        for cell, setting in zip(row[1:], omniglot_results.TABLE_SETTINGS, strict=True):
            values = cell.split(", ")  # each seed's network, seed 0 first; "–" where a row has fewer
            assert [float(v) for v in values[:len(names)]] == pytest.approx(
                [table["rows"][n][setting]["mean"] for n in names], abs=0.051), label
            assert values[len(names):] == ["–"] * (2 - len(names)), label
    names = [n for row in omniglot_results.HEADLINE.values() for n in row]
    widest = [max(table["rows"][n][s]["ci95"] for n in names) for s in omniglot_results.TABLE_SETTINGS]
    assert [float(v) for v in rows[-1][1:]] == pytest.approx(widest, abs=0.051)
    assert all(len(row) == len(header) for row in rows)
    table["rows"].pop("omniglot_fomaml_1shot_seed1_anneal")
    with pytest.raises(KeyError, match="no row for omniglot_fomaml_1shot_seed1_anneal"):
        omniglot_results.headline(table)
    with pytest.raises(KeyError, match="setting 5w9s"):
        omniglot_results.headline(mb.results.load("omniglot_results"), settings=("5w1s", "5w9s"))


def test_rescore_sample_counts_the_tasks_scored_as_the_probe_file_says():
    probe = mb.results.load("omniglot_confirmation")
    name = "omniglot_maml_5shot_seed2_shift2_long_anneal"
    k = int(probe["chosen"]["5"])
    assert omniglot_results.rescore_sample(name, k, probe, num_tasks=3) == 3
    # a file whose second task's count is off by one: that task no longer agrees
    tampered = {"rows": {name: {**probe["rows"][name], "test_correct": {
        str(k): [c + (i == 1) for i, c in enumerate(probe["rows"][name]["test_correct"][str(k)])]}}}}
    assert omniglot_results.rescore_sample(name, k, tampered, num_tasks=3) == 2


@pytest.mark.parametrize("args, message", [
    (("omniglot_maml_1shot", 10), "name must be one of the probe's networks"),
    (("omniglot_maml_5shot_seed2_shift2_long_anneal", 7), r"steps must be one the probe scored \(3, 5, 10, 20\), got 7"),
    (("omniglot_maml_5shot_seed2_shift2_long_anneal", 10, 601), r"num_tasks must be in \[1, 600\]"),
])
def test_rescore_sample_names_a_bad_argument(args, message):
    probe = mb.results.load("omniglot_confirmation")
    with pytest.raises(ValueError, match=message):
        omniglot_results.rescore_sample(*args[:2], probe, *args[2:])


def test_training_fit_scores_each_network_on_the_chapter_s_training_tasks():
    name = "omniglot_maml_1shot"
    fit = omniglot_results.training_fit([name], num_tasks=3)
    assert (fit["num_tasks"], fit["seed"]) == (3, omniglot_results.FIT_SEED)
    tasks = mb.protocol.omniglot_tasks("train", 5).sample(  # chapter 08's draw, upright, 1-shot
        3, 1, 1, generator=torch.Generator().manual_seed(omniglot_results.FIT_SEED))
    fresh = mb.protocol.adapted_accuracy(*_loaded(name), tasks, method="maml", inner_lr=0.4, steps=3).double()
    assert fit["rows"][name]["fit"] == omniglot_results.summary(fresh)
    assert fit["rows"][name]["correct"] == [round(5 * v) for v in fresh.tolist()]
    for bad in ("omniglot_fomaml_1shot", "omniglot_maml_20way_1shot"):
        with pytest.raises(ValueError, match="names must be 5-way MAML Omniglot recipes"):
            omniglot_results.training_fit([bad], num_tasks=2)
    with pytest.raises(ValueError, match="num_tasks"):
        omniglot_results.training_fit([name], num_tasks=1)


def test_shipped_training_fit_matches_its_claims_and_a_sample_rescores_the_same():
    fit = mb.results.load("omniglot_training_fit")
    assert fit["command"].startswith("python -m mamlbook.omniglot_results --training-fit")
    assert fit["seed"] == omniglot_results.FIT_SEED and fit["num_tasks"] == 200
    for name, row in fit["rows"].items():
        recipe = mb.recipes.RECIPES[name]
        assert recipe.training.method == "maml" and recipe.ways == 5, name
        assert len(row["correct"]) == row["fit"]["tasks"] == 200, name
        assert round(100 * sum(row["correct"]) / (200 * 5), 2) == row["fit"]["mean"], name
    name = "omniglot_maml_1shot_anneal"  # the network chapter 08 re-scores
    assert omniglot_results.fit_sample(name, fit, num_tasks=3) == 3
    tampered = {**fit, "rows": {name: {**fit["rows"][name], "correct": [
        c + (i == 2) for i, c in enumerate(fit["rows"][name]["correct"])]}}}
    assert omniglot_results.fit_sample(name, tampered, num_tasks=3) == 2
    with pytest.raises(ValueError, match="name must be one of the file's networks"):
        omniglot_results.fit_sample("omniglot_maml_1shot", fit)
    with pytest.raises(ValueError, match=r"num_tasks must be in \[1, 200\]"):
        omniglot_results.fit_sample(name, fit, num_tasks=0)


def test_training_fit_command_writes_and_merges_rows(tmp_path):
    out = tmp_path / "fit.json"
    first = ["--training-fit", "--tasks", "2", "--out", str(out), "--recipes"]
    assert omniglot_results.main([*first, "omniglot_maml_1shot"]) == 0
    assert omniglot_results.main([*first, "omniglot_maml_1shot_long", "--merge"]) == 0
    written = json.loads(out.read_text())
    assert list(written["rows"]) == ["omniglot_maml_1shot", "omniglot_maml_1shot_long"]
    assert written["command"].count("--training-fit") == 2 and written["num_tasks"] == 2


def test_samples_are_drawn_as_the_file_says_and_checked_before_drawing(monkeypatch):
    fit, probe = mb.results.load("omniglot_training_fit"), mb.results.load("omniglot_confirmation")
    drawn = []

    def draw(*args, **kwargs):  # records the draw, then stops before any scoring
        drawn.append((args, kwargs))
        raise RuntimeError("drawn")

    monkeypatch.setattr(omniglot_results, "training_tasks", draw)
    monkeypatch.setattr(omniglot_results, "setting_tasks", draw)
    with pytest.raises(RuntimeError, match="drawn"):  # the file's seed, not FIT_SEED
        omniglot_results.fit_sample("omniglot_maml_1shot_anneal", {**fit, "seed": 12}, num_tasks=3)
    assert drawn == [((5, 1, 200), {"seed": 12})]
    with pytest.raises(ValueError, match=r"num_tasks must be in \[1, 200\]"):
        omniglot_results.fit_sample("omniglot_maml_1shot_anneal", fit, num_tasks=201)
    with pytest.raises(ValueError, match=r"num_tasks must be in \[1, 600\]"):
        omniglot_results.rescore_sample("omniglot_maml_5shot_seed2_shift2_long_anneal", 10, probe, num_tasks=601)
    assert len(drawn) == 1  # the bad num_tasks were refused before any draw


def test_training_fit_merge_refuses_a_file_of_another_seed(tmp_path, capsys, monkeypatch):
    out = tmp_path / "fit.json"
    out.write_text(json.dumps({"num_tasks": 2, "seed": 12, "rows": {}}))
    monkeypatch.setattr(omniglot_results, "training_fit", lambda *a, **k: pytest.fail("scored before the check"))
    with pytest.raises(SystemExit) as exit_:
        omniglot_results.main(["--training-fit", "--tasks", "2", "--merge", "--out", str(out), "--recipes",
                               "omniglot_maml_1shot"])
    assert exit_.value.code == 2 and "was drawn with seed 12, --training-fit draws with 11" in capsys.readouterr().err


def test_correct_per_task_is_the_count_of_query_images_each_task_got_right():
    # 5-way 3-query tasks: 15 query images each; a float accuracy of 1/15 is one image
    tasks = mb.TaskBatch(torch.zeros(3, 5, 1), torch.zeros(3, 5), torch.zeros(3, 15, 1), torch.zeros(3, 15))
    accuracy = torch.tensor([1 / 15, 0.2, 1.0])
    assert omniglot_results.correct_per_task(accuracy, tasks) == [1, 3, 15]
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 15, 5, generator=generator)
    labels = torch.randint(0, 5, (3, 15), generator=generator)
    hits = (logits.argmax(-1) == labels)
    assert omniglot_results.correct_per_task(hits.float().mean(1), tasks) == hits.sum(1).tolist()
    # 13 of 22 is 12.999999 in float32 once multiplied back: a count, not a truncation
    tasks22 = mb.TaskBatch(torch.zeros(1, 2, 1), torch.zeros(1, 2), torch.zeros(1, 22, 1), torch.zeros(1, 22))
    assert omniglot_results.correct_per_task(torch.tensor([13 / 22]), tasks22) == [13]
