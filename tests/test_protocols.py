"""Protocols (CK+ 8/6-class, TFD, SynthFACS), ablations and results tables."""

from __future__ import annotations

import numpy as np
import pytest

from captum_fau.data.base import CKPLUS_CLASSES, FaceSet
from captum_fau.errors import ConfigError, DatasetError, LabelError
from captum_fau.train.evaluate import FoldResult, ResultsTable, confusion_matrix, per_class_accuracy
from captum_fau.train.protocols import (
    ABLATIONS,
    CKPLUS6_CLASSES,
    make_splits,
    run_protocol,
    run_seed,
    to_ckplus6,
    variant_config,
)
from captum_fau.train.trainer import TrainConfig


def ck_like(subjects: int = 12, size: int = 32, seed: int = 0) -> FaceSet:
    """Every subject shows every CK+ class once."""
    rng = np.random.default_rng(seed)
    emotions = np.tile(np.arange(8), subjects)
    subj = np.repeat([f"S{i:03d}" for i in range(subjects)], 8)
    images = rng.integers(0, 255, (len(emotions), size, size), dtype=np.uint8)
    return FaceSet(images=images, class_names=CKPLUS_CLASSES, emotions=emotions, subjects=subj, name="ckplus")


def tfd_like(n: int = 70, size: int = 32) -> FaceSet:
    rng = np.random.default_rng(0)
    codes = np.stack([np.roll(np.array([1, 1, 1, 2, 3] * (n // 5)), 14 * k) for k in range(5)], 1)
    names = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral")
    return FaceSet(
        images=rng.integers(0, 255, (n, size, size), dtype=np.uint8),
        class_names=names,
        emotions=np.arange(n) % 7,
        subjects=np.arange(n) // 2,
        folds=codes,
        name="tfd",
    )


def test_ckplus8_folds_are_subject_independent() -> None:
    data = ck_like()
    splits = list(make_splits("ckplus8", data))
    assert [s.fold for s in splits] == list(range(10))
    seen_test = []
    for s in splits:
        tr, va, te = set(s.train.subjects), set(s.valid.subjects), set(s.test.subjects)
        assert not (tr & va) and not (tr & te) and not (va & te)
        seen_test += list(te)
    assert sorted(seen_test) == sorted(set(data.subjects))
    # subjects sorted by id, fold = index mod 10 (the reference rule)
    assert set(splits[0].test.subjects) == {"S000", "S010"}


def test_reference_selection_trains_on_all_non_test_folds() -> None:
    split = next(make_splits("ckplus8", ck_like(), selection="test"))
    assert split.valid is None and len(split.train) + len(split.test) == len(ck_like())


def test_ckplus6_drops_neutral_and_contempt() -> None:
    six = to_ckplus6(ck_like())
    assert six.class_names == CKPLUS6_CLASSES
    assert sorted(np.unique(six.emotions).tolist()) == list(range(6))
    assert len(six) == 12 * 6
    split = next(make_splits("ckplus6", ck_like()))
    assert split.test.class_names == CKPLUS6_CLASSES


def test_tfd_uses_its_split_codes() -> None:
    data = tfd_like()
    splits = list(make_splits("tfd", data))
    assert len(splits) == 5
    for k, s in enumerate(splits):
        assert len(s.train) == int((data.folds[:, k] == 1).sum())
        assert len(s.valid) == int((data.folds[:, k] == 2).sum())
        assert len(s.test) == int((data.folds[:, k] == 3).sum())


def test_synthfacs_subject_folds_are_seeded() -> None:
    data = ck_like(subjects=10)
    a = [set(s.test.subjects) for s in make_splits("synthfacs", data, n_folds=5, seed=0)]
    b = [set(s.test.subjects) for s in make_splits("synthfacs", data, n_folds=5, seed=0)]
    c = [set(s.test.subjects) for s in make_splits("synthfacs", data, n_folds=5, seed=1)]
    assert a == b and a != c


def test_class_missing_in_a_fold() -> None:
    data = ck_like(subjects=10)
    # contempt only in subject S003: round 2 validates on S003 (fold 3), so its training split lacks contempt
    keep = (data.emotions != 2) | (data.subjects == "S003")
    data = data.subset(np.flatnonzero(keep))
    with pytest.raises(LabelError, match=r"Fold 2 of ckplus8.*\['contempt'\]"):
        list(make_splits("ckplus8", data))


def test_bad_protocol_inputs() -> None:
    with pytest.raises(ConfigError, match="Unknown protocol"):
        list(make_splits("jaffe", ck_like()))
    with pytest.raises(ConfigError, match="do not exist"):
        list(make_splits("ckplus8", ck_like(), folds=[12]))
    with pytest.raises(LabelError, match="subject ids"):
        list(make_splits("ckplus8", FaceSet(images=np.zeros((8, 8, 8), np.uint8), emotions=np.arange(8))))
    with pytest.raises(DatasetError, match="split codes"):
        list(make_splits("tfd", ck_like()))
    with pytest.raises(ConfigError, match="Unknown variant"):
        variant_config(TrainConfig(), "+X")


def test_ablation_rows() -> None:
    base = TrainConfig()
    assert (variant_config(base, "plain").augment, variant_config(base, "plain").dropout) == (False, 0.0)
    assert (variant_config(base, "+D").augment, variant_config(base, "+D").dropout) == (False, 0.5)
    assert (variant_config(base, "+A").augment, variant_config(base, "+A").dropout) == (True, 0.0)
    assert variant_config(base, "+AD").variant == "+AD"


def test_run_protocol_table(tmp_path) -> None:
    cfg = TrainConfig(iterations=2, batch_size=8, checkpoint_every=1, eval_batch_size=64)
    table = run_protocol(
        "tfd", tfd_like(), cfg, variants=["plain", "+AD"], folds=[0, 1], out_dir=tmp_path, progress=False
    )
    assert len(table.folds) == 4 and table.variants == ["plain", "+AD"]
    assert (tmp_path / "results.json").is_file()
    assert (tmp_path / "plus_AD" / "fold_1" / "model" / "model.safetensors").is_file()
    loaded = ResultsTable.load(tmp_path / "results.json")
    assert loaded.summary() == table.summary()
    md = table.to_markdown()
    assert "| Zero-bias CNN +AD |" in md and "| Zero-bias CNN |" in md and "anger" in md


def test_run_seeds_are_distinct_stable_and_recorded(tmp_path) -> None:
    seeds = {(v, f): run_seed(0, v, f) for v in ABLATIONS for f in range(10)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= s < 2**32 for s in seeds.values())
    assert run_seed(0, "+AD", 3) == seeds["+AD", 3] and run_seed(1, "+AD", 3) != seeds["+AD", 3]
    with pytest.raises(ConfigError, match="Unknown variant"):
        run_seed(0, "+X", 0)
    with pytest.raises(ConfigError, match="non-negative"):
        run_seed(-1, "+AD", 0)
    cfg = TrainConfig(iterations=1, batch_size=4, checkpoint_every=1, eval_batch_size=64, seed=5)
    table = run_protocol(
        "tfd", tfd_like(), cfg, variants=["plain", "+AD"], folds=[0, 1], out_dir=tmp_path, progress=False
    )
    recorded = {(f.variant, f.fold): f.extra["seed"] for f in table.folds}
    assert recorded == {(v, k): run_seed(5, v, k) for v in ("plain", "+AD") for k in (0, 1)}
    # The init scale k is drawn per run, so the runs differ in k (the reference's per-run draw).
    ks = [f.extra["init_k"] for f in table.folds]
    assert len(set(ks)) == len(ks) and all(0.2 <= k < 1.2 for k in ks)
    assert "SeedSequence" in table.meta["run_seeds"]
    assert ResultsTable.load(tmp_path / "results.json").folds[3].extra["seed"] == recorded["+AD", 1]
    # A fold rerun alone trains from the seed it had in the full table.
    alone = run_protocol("tfd", tfd_like(), cfg, variants=["+AD"], folds=[1], progress=False)
    assert alone.folds[0].extra["seed"] == recorded["+AD", 1]
    assert alone.folds[0].extra["init_k"] == pytest.approx(table.folds[3].extra["init_k"])


def test_cli_train_fc4_init_reference(tmp_path) -> None:
    import json

    from captum_fau.cli import main
    from captum_fau.models.zerobias import ZeroBiasCNN

    out = tmp_path / "run"
    args = ["train", "--data", "synthfacs:88", "--out", str(out), "--iterations", "1", "--batch-size", "4"]
    args += ["--checkpoint-every", "1", "--folds", "0", "--n-folds", "4", "--fc4-init", "reference", "-q"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recipe"]["fc4_init"] == "reference"
    assert metrics["extra"]["seed"] == run_seed(0, "+AD", 0)
    assert ZeroBiasCNN.from_pretrained(str(out)).fc4_init == "reference"


def test_confusion_and_summary_match_numpy() -> None:
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    cm = confusion_matrix(t, p, 4)
    assert cm.sum() == 200 and all(cm[i, j] == ((t == i) & (p == j)).sum() for i in range(4) for j in range(4))
    cm[3] = 0
    pca = per_class_accuracy(cm)
    assert np.isnan(pca[3]) and pca[0] == pytest.approx(cm[0, 0] / cm[0].sum())
    accs = [0.9, 0.8, 1.0]
    table = ResultsTable("t", ("a", "b"), [FoldResult(i, "+AD", a, np.eye(2, dtype=int)) for i, a in enumerate(accs)])
    assert table.summary()["+AD"]["mean"] == pytest.approx(np.mean(accs))
    assert table.summary()["+AD"]["std"] == pytest.approx(np.std(accs))


def test_test_selection_is_labelled() -> None:
    table = ResultsTable("t", ("a", "b"), [FoldResult(0, "+AD", 1.0, np.eye(2, dtype=int), selection="test")])
    assert "optimistic" in table.to_markdown()


def test_cli_train_and_evaluate(tmp_path, capsys) -> None:
    from captum_fau.cli import main

    out = tmp_path / "run"
    args = ["train", "--data", "synthfacs:176", "--out", str(out), "--iterations", "2", "--batch-size", "8"]
    args += ["--checkpoint-every", "1", "--folds", "0", "--n-folds", "4", "-q"]
    assert main(args) == 0
    for name in ("config.json", "model.safetensors", "metrics.json", "results.json", "results.md"):
        assert (out / name).is_file(), name
    capsys.readouterr()
    assert main(["evaluate", str(out), "--out", str(tmp_path / "table.md")]) == 0
    assert "Zero-bias CNN +AD" in capsys.readouterr().out
    assert (tmp_path / "table.json").is_file()
    assert main(["evaluate", "--model", str(out), "--data", "synthfacs:24", "-q"]) == 0


def test_cli_bad_input(tmp_path, capsys) -> None:
    from captum_fau.cli import main

    assert main(["train", "--data", "synthfacs:24", "--out", str(tmp_path), "--device", "tpu"]) == 2
    assert "Unknown device" in capsys.readouterr().err
    assert main(["train", "--data", "fer2013:x.csv", "--out", str(tmp_path)]) == 2
    assert "no protocol" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "Nothing to evaluate" in capsys.readouterr().err
