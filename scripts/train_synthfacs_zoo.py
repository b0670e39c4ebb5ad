#!/usr/bin/env python
"""Train the packaged zoo model ``zerobias-synthfacs-8class``.

This is the exact command that produced the shipped weights::

    nice -n 5 .venv/bin/python scripts/train_synthfacs_zoo.py \\
        --n 2400 --seed 0 --iterations 500 --checkpoint-every 50 \\
        --out runs/synthfacs-zoo --package

(The shipped run was started with ``--iterations 900``, stopped after the
iteration-500 checkpoint when its 45-minute CPU budget ran out, and finished
with the command above, which resumes from that checkpoint; a resumed run ends
identical to an uninterrupted one.)

It renders a SynthFACS set (8 CK+ classes, prototype AU patterns), splits
its subjects into 5 subject-independent folds (fold 0 = test, fold 1 =
validation, the rest = training), trains the zero-bias CNN with the paper's
recipe (+AD: augmentation and dropout, SGD lr 0.01, momentum 0.9, weight decay
1e-5, batch 64 with replacement) for a CPU-sized budget, selects the
checkpoint with the best *validation* accuracy and reports its accuracy on
the held-out *test* subjects. ``--package`` writes the model folder into
``captum_fau/weights/zerobias-synthfacs-8class`` (``config.json``,
``model.safetensors``, ``metrics.json``, ``training_log.jsonl``) and pins the
weights' sha256 in ``captum_fau/zoo_registry.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from captum_fau.data.folds import subject_kfold, train_valid_test  # noqa: E402
from captum_fau.data.synthfacs import load_synthfacs  # noqa: E402
from captum_fau.train.evaluate import evaluate_model, per_class_accuracy  # noqa: E402
from captum_fau.train.trainer import LOG_FILE, TrainConfig, predict, train  # noqa: E402
from captum_fau.zoo import sha256_file  # noqa: E402

ZOO_NAME = "zerobias-synthfacs-8class"


def per_subject_accuracy(model: torch.nn.Module, data, device: str) -> dict[str, float]:
    preds = predict(model, data, device)
    out = {}
    for subject in np.unique(data.subjects):
        rows = data.subjects == subject
        out[str(subject)] = float((preds[rows] == data.emotions[rows]).mean())
    return out


def bootstrap_subject_std(model: torch.nn.Module, data, device: str, n_boot: int = 2000, seed: int = 0) -> dict:
    """Std and 95% interval of test accuracy under resampling of the held-out *subjects*."""
    preds = predict(model, data, device)
    correct = preds == data.emotions
    subjects, inverse = np.unique(data.subjects, return_inverse=True)
    hits = np.bincount(inverse, weights=correct.astype(float), minlength=len(subjects))
    counts = np.bincount(inverse, minlength=len(subjects))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(subjects), (n_boot, len(subjects)))
    accs = hits[draws].sum(1) / counts[draws].sum(1)
    return {
        "std": float(accs.std(ddof=1)),
        "ci95": [float(np.percentile(accs, 2.5)), float(np.percentile(accs, 97.5))],
        "n_bootstrap": n_boot,
        "n_subjects": int(len(subjects)),
    }


def pin_registry_sha(sha: str, metrics: dict) -> None:
    """Set the sha256 (and short metrics) of this one registry entry, leaving the file's layout alone."""
    path = REPO / "captum_fau" / "zoo_registry.json"
    text = path.read_text()
    start = text.index(f'"{ZOO_NAME}": {{')
    end = text.index("\n  }", start)
    block = text[start:end]
    block = re.sub(r'"sha256": (null|"[0-9a-f]*")', f'"sha256": "{sha}"', block, count=1)
    block = re.sub(r'"metrics": \{.*\}', '"metrics": ' + json.dumps(metrics), block, count=1)
    new = text[:start] + block + text[end:]
    json.loads(new)  # still valid JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2400, help="SynthFACS images to render")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-subjects", type=int, default=None)
    p.add_argument("--mode", default="prototype")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--test-fold", type=int, default=0)
    p.add_argument("--valid-fold", type=int, default=1)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/synthfacs-zoo")
    p.add_argument("--package", action="store_true", help="write the packaged model and pin its sha256")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    t_start = time.time()
    data = load_synthfacs(n=args.n, seed=args.seed, mode=args.mode, n_subjects=args.n_subjects)
    fold_ids = subject_kfold(data.subjects, args.folds, seed=args.seed)
    train_idx, valid_idx, test_idx = train_valid_test(fold_ids, args.test_fold, args.valid_fold)
    train_set, valid_set, test_set = data.subset(train_idx), data.subset(valid_idx), data.subset(test_idx)
    print(f"data {data}: train {len(train_idx)}, valid {len(valid_idx)}, test {len(test_idx)}", flush=True)

    config = TrainConfig(
        iterations=args.iterations,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device=args.device,
        selection="valid",
    )
    result = train(
        train_set,
        config,
        valid_set=valid_set,
        test_set=test_set,
        out_dir=args.out,
        progress=not args.quiet,
    )
    fold = evaluate_model(
        result.model, test_set, fold=args.test_fold, selected_iteration=result.selected_iteration, device=args.device
    )
    per_class = per_class_accuracy(fold.confusion)
    boot = bootstrap_subject_std(result.model, test_set, args.device, seed=args.seed)
    subj = per_subject_accuracy(result.model, test_set, args.device)
    best_test = max(result.history, key=lambda r: r.get("test_accuracy", -1))
    # Training time is cumulative over resumed calls (validation/test passes included);
    # the rest of this call (rendering, evaluation, packaging) is added on top.
    train_wall = float(result.history[-1]["elapsed_s"]) if result.history else 0.0
    wall = train_wall + time.time() - t_start - result.wall_time_s

    metrics = {
        "model": ZOO_NAME,
        "note": (
            "CPU-budget training: the paper's recipe (+AD) for "
            f"{args.iterations} iterations instead of the reference's 31,000, which do not fit on the "
            "2-core CPU this model was trained on. One held-out subject fold was trained and tested; "
            "accuracy_std is NOT a std over folds but a bootstrap over the held-out test subjects."
        ),
        "data": {
            "dataset": "SynthFACS",
            "n": args.n,
            "seed": args.seed,
            "mode": args.mode,
            "n_subjects": int(len(np.unique(data.subjects))),
            "classes": list(data.class_names),
        },
        "split": {
            "kind": f"{args.folds} subject-independent folds (captum_fau.data.folds.subject_kfold, seed {args.seed})",
            "test_fold": args.test_fold,
            "valid_fold": args.valid_fold,
            "n_train": int(len(train_idx)),
            "n_valid": int(len(valid_idx)),
            "n_test": int(len(test_idx)),
            "test_subjects": sorted(str(s) for s in np.unique(test_set.subjects)),
            "valid_subjects": sorted(str(s) for s in np.unique(valid_set.subjects)),
        },
        "recipe": {**config.to_dict(), "variant": config.variant},
        "iterations": args.iterations,
        "reference_iterations": 31_000,
        "batch": config.batch_size,
        "selection": "best validation accuracy (checkpoint every "
        f"{args.checkpoint_every} iterations); selected iteration {result.selected_iteration}",
        "device": f"{args.device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "wall_time_s": round(wall, 1),
        "train_wall_time_s": round(train_wall, 1),
        "train_images_per_s": round(args.iterations * config.batch_size / train_wall, 2) if train_wall else None,
        "train_images_per_s_note": "includes validation and test passes at every checkpoint; the CPU was "
        "shared with other jobs during training",
        "accuracy": fold.accuracy,
        "accuracy_std": boot["std"],
        "accuracy_std_kind": "bootstrap over held-out test subjects (2000 resamples), one fold",
        "accuracy_ci95": boot["ci95"],
        "folds_measured": 1,
        "per_subject_accuracy": subj,
        "per_class_accuracy": {
            name: (None if np.isnan(a) else float(a)) for name, a in zip(data.class_names, per_class)
        },
        "confusion_matrix": {"rows": "true class", "columns": "predicted class", "counts": fold.confusion.tolist()},
        "valid_accuracy_selected": next(
            r["valid_accuracy"] for r in result.history if r["iteration"] == result.selected_iteration
        ),
        "comparison_reference_test_selection": {
            "label": "checkpoint chosen on the TEST fold, as the reference code did: optimistic, not the reported number",
            "iteration": best_test["iteration"],
            "test_accuracy": best_test.get("test_accuracy"),
        },
        "command": "nice -n 5 .venv/bin/python scripts/train_synthfacs_zoo.py " + " ".join(sys.argv[1:]),
    }
    out = Path(args.out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps({k: metrics[k] for k in ("accuracy", "accuracy_std", "per_class_accuracy", "wall_time_s")}, indent=1))

    if args.package:
        target = REPO / "captum_fau" / "weights" / ZOO_NAME
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            result.model.cpu().save_pretrained(tmp)
            for name in ("config.json", "model.safetensors"):
                os.replace(Path(tmp) / name, target / name)
        shutil.copyfile(out / LOG_FILE, target / "training_log.jsonl")
        (target / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        sha = sha256_file(target / "model.safetensors")
        pin_registry_sha(
            sha,
            {
                "accuracy": round(fold.accuracy, 4),
                "accuracy_std": round(boot["std"], 4),
                "evaluation": "held-out SynthFACS subjects, one fold; std = subject bootstrap",
                "iterations": args.iterations,
            },
        )
        print(f"packaged {target} (sha256 {sha})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
