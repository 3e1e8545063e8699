"""scripts/results.py and scripts/tuning.py: the tables they write from run files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture(scope="module")
def scripts() -> Any:
    import results
    import tuning

    return results, tuning


def row(recipe: str, bleu: float, **extra: Any) -> dict[str, Any]:
    base = {
        "recipe": recipe,
        "direction": "de-en",
        "split": "test_2016_flickr",
        "bleu": bleu,
        "bleu_lc": bleu + 0.5,
        "bleu_tok_lc": bleu + 1.0,
        "bleu_moses_lc": bleu + 1.5,
        "chrf": 50.0,
        "ppl": 20.0,
        "val_ppl": 21.0,
        "params": 1_000_000,
        "epochs": 3,
        "device": "cpu",
        "machine": "CPU 2 cores",
        "wall_time_s": 600.0,
        "budget_min": 10,
        "signature": "nrefs:1|case:mixed",
        "decoding": "greedy",
        "command": f"nmt train experiment={recipe}",
        "date": "2026-11-23",
    }
    return base | extra


def test_targets_state_each_gap_as_measured_met_or_not(scripts: Any) -> None:
    results, _ = scripts
    rows = [
        row("luong_best_en_de", 30.0, direction="en-de"),  # papers' BLEU 31.5
        row("luong_best_en_de", 45.0, direction="en-de", split="test_2017_flickr"),  # not 2016
        row("luong_best", 40.2),
        row("default", 36.5),
        row("default", 38.0, direction="fr-en"),  # not de-en: not the default's target
        row("luong_best", 41.0, model="ensemble of 3 (seeds 1, 2, 3)"),
    ]
    lines = results.targets(rows)
    en_de, en_de_ens, en_fr, _, de_en, de_en_ens, default = lines[3:10]
    assert "en->de" in en_de and "measured 31.50" in en_de and "not met, 7.50 short" in en_de
    assert "en->de, ensemble" in en_de_ens and "not measured" in en_de_ens
    assert "en->fr" in en_fr and "not measured" in en_fr
    # the single-model target is not met by the ensemble's 41.00
    assert "measured 40.20 (luong_best, single, 10 min on CPU 2 cores)" in de_en
    assert "**met**" in de_en
    assert "measured 41.00 (luong_best, ensemble of 3" in de_en_ens
    assert "measured 36.50 (default" in default and "not met, 0.50 short" in default
    assert any("en-fr test_2016_flickr: 59.02" in line for line in lines)


def test_readme_gets_the_best_row_of_each_direction_then_each_family(
    scripts: Any, tmp_path: Path
) -> None:
    results, _ = scripts
    readme = tmp_path / "README.md"
    start, end = results.README_START, results.README_END
    readme.write_text(f"# nmt\n\nbefore\n{start}\nold table\n{end}\nafter\n", encoding="utf-8")
    rows = [
        row("luong_best_en_de", 30.0, direction="en-de"),
        row("cho_best_en_de", 20.0, direction="en-de"),
        row("luong_best", 36.0),
        row("cho_best", 25.0),
        row("cho_best", 30.0, split="test_2017_flickr"),  # another split: not shown
        row("luong_best_en_fr", 50.0, direction="en-fr"),
    ]
    for _ in range(2):  # a second write replaces the first
        results.update_readme(rows, readme)
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and text.count(start) == 1
    assert text.startswith("# nmt\n\nbefore\n") and text.endswith(f"{end}\nafter\n")
    table = text.split(start)[1].split(end)[0]
    body = [line for line in table.splitlines() if "| `" in line]
    shown = [(line.split("|")[1].strip(), line.split("`")[1]) for line in body]
    assert shown == [
        ("de-en", "luong_best"),
        ("en-de", "luong_best_en_de"),
        ("en-fr", "luong_best_en_fr"),
        ("de-en", "cho_best"),
    ]


def test_an_interrupted_run_is_resumed_and_its_command_stays_clean(
    scripts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results, _ = scripts
    calls: list[list[str]] = []

    class Done:
        returncode = 0

    monkeypatch.setattr(results.subprocess, "run", lambda cmd, **_: calls.append(cmd) or Done())
    plan = results.Planned("luong_best", "en-de", 8)
    overrides = results.train_overrides(plan, ["device=cpu"])
    assert overrides == [
        "experiment=luong_best",
        "data.src_lang=en",
        "data.tgt_lang=de",
        "trainer.max_minutes=8",
        "threads=1",
        "device=cpu",
    ]
    run_dir = tmp_path / plan.name
    assert results.train(run_dir, overrides)
    assert not any(a.startswith("trainer.resume_from=") for a in calls[-1])
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    assert results.train(run_dir, overrides)
    assert f"trainer.resume_from={run_dir}" in calls[-1]
    # the resumed attempt's record is Hydra's; the row's command leaves the resume out
    (run_dir / ".hydra").mkdir()
    recorded = [*overrides, f"trainer.resume_from={run_dir}", f"hydra.run.dir={run_dir}"]
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(recorded))
    assert results.recorded_overrides(run_dir) == overrides


def test_only_names_planned_runs(scripts: Any) -> None:
    results, _ = scripts
    assert results.selected(["default.de-en"]) == [results.PLAN[0]]
    with pytest.raises(SystemExit, match="no planned run"):
        results.selected(["nope.de-en"])


def test_readme_without_markers_is_left_alone(scripts: Any, tmp_path: Path) -> None:
    results, _ = scripts
    readme = tmp_path / "README.md"
    readme.write_text("# nmt\n", encoding="utf-8")
    results.update_readme([row("luong_best", 36.0)], readme)
    assert readme.read_text(encoding="utf-8") == "# nmt\n"


def test_recipe_decoding_reads_the_runs_config(scripts: Any, tmp_path: Path) -> None:
    results, _ = scripts
    (tmp_path / ".hydra").mkdir()
    config = tmp_path / ".hydra" / "config.yaml"
    config.write_text(yaml.safe_dump({"decoding": {"strategy": "greedy", "beam_size": 5}}))
    assert results.recipe_decoding(tmp_path) == []
    decoding = {"strategy": "beam", "beam_size": 10, "length_penalty": 0.6}
    config.write_text(yaml.safe_dump({"decoding": decoding}))
    assert results.recipe_decoding(tmp_path) == [
        "decoding=beam",
        "decoding.beam_size=10",
        "decoding.length_penalty=0.6",
    ]


def test_tuning_sections_replace_themselves_and_keep_the_others(
    scripts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tuning = scripts
    monkeypatch.setattr(tuning, "DOC", tmp_path / "tuning.md")
    tuning.write_section("a", "first A")
    tuning.write_section("b", "only B")
    tuning.write_section("a", "second A")
    text = (tmp_path / "tuning.md").read_text(encoding="utf-8")
    assert "first A" not in text and "second A" in text and "only B" in text
    assert text.index("second A") < text.index("only B")  # replaced in place


def test_sweep_table_marks_the_best_validation_bleu(
    scripts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tuning = scripts
    monkeypatch.setattr(tuning, "DOC", tmp_path / "tuning.md")
    monkeypatch.setattr(tuning, "ROOT", tmp_path)
    sweep = tmp_path / "sweeps" / "demo"
    (sweep).mkdir(parents=True)
    task = ["experiment=demo", "trainer.label_smoothing=0.0,0.1"]
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))
    for num, (smoothing, bleus) in enumerate([(0.0, [10.0, 20.0]), (0.1, [12.0, 22.5])]):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        overrides = [f"trainer.label_smoothing={smoothing}", "experiment=demo", "threads=1"]
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        records = [
            {"type": "epoch", "epoch": i + 1, "val_bleu": b, "val_ppl": 9.0 - i}
            for i, b in enumerate(bleus)
        ]
        (job / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        summary = {"epochs": 2, "train_time_s": 360.0, "params": 2_500_000}
        (job / "summary.json").write_text(json.dumps(summary))
    (sweep / "2").mkdir()  # a job that never finished: left out
    monkeypatch.setattr(sys, "argv", ["tuning.py", "sweep", str(sweep)])
    tuning.main()
    text = (tmp_path / "tuning.md").read_text(encoding="utf-8")
    # rows show what varies; what every job shares (threads=1) is left out
    assert (
        "| 1 | `trainer.label_smoothing=0.1` | 2.5M | 2 | 6.0 min | 22.50 **best** | 8.00 |" in text
    )
    assert "| 0 | `trainer.label_smoothing=0.0` | 2.5M | 2 | 6.0 min | 20.00 | 8.00 |" in text
    assert "\n| 2 |" not in text


def test_epochs_done_counts_a_cut_epoch_as_a_fraction(scripts: Any, tmp_path: Path) -> None:
    results, _ = scripts
    records = [{"type": "step", "step": 5}, {"type": "epoch", "epoch": 1, "step": 100}]
    records += [
        {"type": "epoch", "epoch": 2, "step": 200},
        {"type": "epoch", "epoch": 3, "step": 240},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert results.epochs_done(tmp_path, {"epochs": 3, "steps": 240}) == 2.4
    assert results.epochs_done(tmp_path, {"epochs": 3, "steps": 300}) == 3.0


def fake_run(
    root: Path, name: str, direction: tuple[str, str], tokenizer: dict[str, Any], bleus: list[float]
) -> Path:
    """A finished `nmt train` run dir: .hydra config and overrides, metrics, summary."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    config = {"data": {"src_lang": direction[0], "tgt_lang": direction[1]}, "tokenizer": tokenizer}
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = [f"data.src_lang={direction[0]}", f"data.tgt_lang={direction[1]}"]
    if tokenizer["kind"] == "sentencepiece":
        overrides.append("tokenizer=sentencepiece")
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    records = [{"type": "step", "step": 1}] + [
        {"type": "epoch", "epoch": i + 1, "val_bleu": b, "val_ppl": 20.0 - i}
        for i, b in enumerate(bleus)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = {"epochs": len(bleus), "train_time_s": 1200.0, "params": 7_795_264, "device": "cpu"}
    (run / "summary.json").write_text(json.dumps(summary | {"cpu_threads": 2}))
    return run


def test_tokenizer_comparison_table(
    scripts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tuning = scripts
    monkeypatch.setattr(tuning, "DOC", tmp_path / "tuning.md")
    sp = {"kind": "sentencepiece", "model_type": "unigram", "vocab_size": 8000, "joint": True}
    runs = [
        fake_run(tmp_path, "a", ("de", "en"), {"kind": "spacy"}, [30.0, 35.5, 35.0]),
        fake_run(tmp_path, "b", ("de", "en"), sp, [31.0, 37.25]),
        fake_run(tmp_path, "c", ("en", "de"), sp | {"sample_alpha": 0.1}, [20.0]),
    ]
    monkeypatch.setattr(sys, "argv", ["tuning.py", "--tokenizer-compare", *map(str, runs)])
    tuning.main()
    text = (tmp_path / "tuning.md").read_text(encoding="utf-8")
    assert "## Word vs sentencepiece: default recipe (val)" in text
    assert (
        "| de->en | spacy words | 3 | 7.8M | 35.50 | 18.00 | 20.0 | "
        "`nmt train data.src_lang=de data.tgt_lang=en` |" in text
    )
    assert "| de->en | sentencepiece unigram 8000 joint | 2 | 7.8M | 37.25 | 19.00 |" in text
    assert "| en->de | sentencepiece unigram 8000 joint, sampling alpha 0.1 | 1 |" in text
    assert "python scripts/tuning.py --tokenizer-compare" in text and "device cpu" in text
    assert text.index("| de->en | sentencepiece") < text.index("| en->de |")
    unfinished = tmp_path / "d"
    unfinished.mkdir()
    monkeypatch.setattr(sys, "argv", ["tuning.py", "--tokenizer-compare", str(unfinished)])
    with pytest.raises(SystemExit, match="no summary.json"):
        tuning.main()


def test_results_table_keeps_the_sections_other_scripts_wrote(scripts: Any, tmp_path: Path) -> None:
    results, _ = scripts
    path = tmp_path / "results.md"
    section = "<!-- averaging:start -->\n## Checkpoint averaging\n| a | 1 |\n<!-- averaging:end -->"
    # ensemble_report.py's names have a colon in them
    other = "<!-- ensemble:beam5:start -->\n## Ensembles\n<!-- ensemble:beam5:end -->"
    path.write_text("# Results on Multi30k\n\nold table\n\n" + section + "\n\n" + other + "\n")
    results.write_markdown([row("default", 30.0)], path, set())
    text = path.read_text()
    assert "old table" not in text and "| default |" in text
    assert text.count(section) == 1 and text.count(other) == 1
    results.write_markdown([row("default", 31.0)], path, set())
    assert path.read_text().count(section) == 1 and path.read_text().count(other) == 1


def test_docs_show_no_machine_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/_common.public_paths: repo-relative, $NMT_DATA_DIR, outputs/ or
    ``…/`` placeholders; URLs, units, system paths and HTML markers untouched."""
    import _common

    monkeypatch.setenv("NMT_DATA_DIR", "/data/m30k")
    root = _common.ROOT
    text = (
        f"`{root}/docs/x.md` /data/m30k/val.de.gz /srv/runs/a/checkpoints/best.pt "
        "/home/me/outputs/2026-01-01/10-00/summary.json /srv/runs/a http://h:80/x/y "
        "tokens/s /dev/null <!-- /tuning:sweep-a -->"
    )
    assert _common.public_paths(text) == (
        "`docs/x.md` $NMT_DATA_DIR/val.de.gz …/a/checkpoints/best.pt "
        "outputs/2026-01-01/10-00/summary.json …/runs/a http://h:80/x/y "
        "tokens/s /dev/null <!-- /tuning:sweep-a -->"
    )


def test_rows_of_runs_not_on_disk_are_kept_and_new_ones_replace_their_key(scripts: Any) -> None:
    results, _ = scripts
    old = [
        row("luong_best", 30.0, budget_min=20, run="luong_best.de-en.20m"),
        row("default", 31.0, budget_min=20),  # a row of the first plan: no run recorded
        row("luong_best", 33.0, budget_min=60, run="luong_best.de-en.60m"),
        row("luong_best", 34.0, budget_min=None, run="luong_best.de-en.60m"),  # on a GPU
        row("luong_best", 29.0, budget_min=7, run="luong_best.de-en.7m"),  # no longer planned
        row("luong_best", 35.0, model="ensemble of 3", run="luong_best.de-en.ensemble3"),
    ]
    new = [row("luong_best", 32.0, budget_min=20, run="luong_best.de-en.20m")]  # old[0]'s key
    merged = results.merged_rows(old, new)
    assert [(r["recipe"], r["budget_min"], r["bleu"]) for r in merged] == [
        ("default", 20, 31.0),  # the plan's order: default first
        ("luong_best", 10, 35.0),  # the ensemble, after the single runs of its budget
        ("luong_best", 20, 32.0),
        ("luong_best", 60, 33.0),
        ("luong_best", None, 34.0),
    ]


def test_a_continued_run_starts_as_a_copy_of_its_finished_source(
    scripts: Any, tmp_path: Path
) -> None:
    results, _ = scripts
    source, target = tmp_path / "r.de-en.20m", tmp_path / "r.de-en.60m"
    assert not results.start_from(target, source)  # source not finished: nothing to copy
    (source / "checkpoints").mkdir(parents=True)
    (source / "checkpoints" / "last.pt").write_bytes(b"weights")
    (source / "eval" / "test").mkdir(parents=True)
    (source / "summary.json").write_text("{}")
    assert results.start_from(target, source)
    assert (target / "checkpoints" / "last.pt").read_bytes() == b"weights"
    assert not (target / "summary.json").exists() and not (target / "eval").exists()
    (target / "checkpoints" / "last.pt").write_bytes(b"trained on")
    assert results.start_from(target, source)  # an interrupted continuation is not reset
    assert (target / "checkpoints" / "last.pt").read_bytes() == b"trained on"


def test_the_continued_runs_command_trains_its_source_first(scripts: Any, tmp_path: Path) -> None:
    results, _ = scripts
    plan = next(p for p in results.PLAN if p.continues)
    for name, minutes in ((plan.continues, 20), (plan.name, 60)):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        recorded = [f"trainer.max_minutes={minutes}", f"hydra.run.dir={tmp_path / name}"]
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(recorded))
    command = results.train_command(tmp_path / plan.name, plan)
    first, copy, resume = command.split(" && ", 2)
    assert "trainer.max_minutes=20" in first and plan.continues in first
    assert copy.startswith("cp -r")
    assert "trainer.max_minutes=60" in resume and "trainer.resume_from=" in resume


def test_a_row_says_why_its_training_ended(scripts: Any) -> None:
    results, _ = scripts
    trainer = {"patience": 4, "max_epochs": 30, "max_minutes": 60}
    assert results.stop_reason({"epochs": 16, "best_epoch": 12}, trainer) == "early stop"
    assert results.stop_reason({"epochs": 30, "best_epoch": 29}, trainer) == "max epochs"
    assert results.stop_reason({"epochs": 14, "best_epoch": 14}, trainer) == "budget"
    assert results.stopped_label(row("x", 1.0, stopped="budget", best_epoch=2)) == "budget (2)"
    improving = row("x", 1.0, stopped="budget", best_epoch=4, epochs=3.4)  # 4th epoch cut
    assert results.stopped_label(improving) == "budget (4), still improving"
    assert results.stopped_label(improving | {"best_epoch": 3}) == "budget (3)"
    early = row("x", 1.0, stopped="early stop", best_epoch=3, epochs=7.0)
    assert results.stopped_label(early) == "early stop (3)"
    # rows from before the record: the budget ended a run that used all of it
    assert results.stopped_label(row("x", 1.0, best_epoch=2)) == "budget (2)"
    assert results.stopped_label(row("x", 1.0, best_epoch=3)) == "budget (3), still improving"
    assert results.stopped_label(row("x", 1.0, wall_time_s=300.0)) == "-"


def test_compare_archs_states_the_transformer_targets(scripts: Any) -> None:
    import compare_archs

    rows = {
        "t": row("transformer_best", 38.5, budget_min=20),
        "r": row("luong_best", 37.0, budget_min=20),
        "te": row("transformer_best_en_de", 30.0, direction="en-de", budget_min=60),
        "re": row("luong_best_en_de", 35.0, direction="en-de", budget_min=60),
    }
    speeds = {
        n: compare_archs.Speed(greedy=10.0, beam=b)
        for n, b in (("t", 6), ("r", 10), ("te", 4), ("re", 10))
    }
    lines = compare_archs.target_lines([("t", "r"), ("te", "re")], rows, speeds)
    assert lines == [
        "- de-en, 20 min: sacreBLEU >= 38.07 (the RNN default's): measured 38.50: **met**.",
        "- de-en, 20 min: beam 5 at least half the RNN's speed: measured 0.60x: **met**.",
        "- en-de, 60 min: papers' BLEU >= 37: measured 31.50: **not met, 5.50 short**.",
        "- en-de, 60 min: beam 5 at least half the RNN's speed: measured 0.40x: "
        "**not met, 0.10x short**.",
    ]


def test_an_ensemble_row_adds_up_its_members_and_lists_their_stops(scripts: Any) -> None:
    results, _ = scripts
    members = [
        {**row("luong_best", 1.0, stopped="early stop", best_epoch=b, epochs=e), "cpu_min": m}
        for b, e, m in ((12, 16.0, 27.5), (10, 14.0, 24.0))
    ]
    facts = results.combined_facts(members)
    assert facts["params"] == 2_000_000 and facts["cpu_min"] == 51.5
    assert facts["wall_time_s"] == 1200.0 and facts["val_ppl"] is None
    assert facts["epochs"] == "16.0 / 14.0"
    assert results.stopped_label(facts) == "early stop (12) / early stop (10)"


def test_each_ensemble_names_its_seeded_members_who_keep_snapshots(scripts: Any) -> None:
    results, _ = scripts
    assert results.ENSEMBLES
    for ensemble in results.ENSEMBLES:
        plans = [p for p in results.PLAN if p.name in ensemble.members]
        assert len(plans) == len(ensemble.members) == 3
        assert {p.seed for p in plans} == {1, 2, 3}
        assert {(p.recipe, p.direction) for p in plans} == {(ensemble.recipe, ensemble.direction)}
        overrides = results.train_overrides(plans[0], [])
        assert "trainer.seed=1" in overrides
        assert f"trainer.keep_last={results.AVERAGE_LAST}" in overrides
    names = [p.name for p in [*results.PLAN, *results.ENSEMBLES]]
    assert len(names) == len(set(names))
