"""Fine-tune a BERT checkpoint on the labelled sentences with the transformers `Trainer`.

The default checkpoint is `dbmdz/bert-base-italian-xxl-cased` (cased, because uncased
Italian models strip accents); any hub id or local directory works instead. Early
stopping and best-model selection use dev macro-F1; the maximum length is read off the
training sentences' token lengths; class imbalance is handled by a class-weighted loss.
Training curves reach MLflow through the Trainer's own integration (`report_to`),
inside the same run contract as the baseline (`training.tracking`); the final model
is logged once, as safetensors, and registered. Checkpoints stay in a temporary folder.

    python -m training.bert --model <hub id or local directory>

Deliberately left out: fast inference (`classifier.scoring`) and hyper-parameter search.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from classifier.scoring import (
    BUNDLE_ARTIFACT,
    LABELS,
    LEXICON_FILE,
    BertScorer,
    load_scorer,
    write_bundle_info,
)
from training.data import ConfigError, DataConfig, DataError, read_splits
from training.tracking import (
    TrainedModel,
    log_and_register,
    log_evaluation,
    peak_memory_mb,
    pinned_requirements,
    run_command,
    training_run,
)

DEFAULT_CHECKPOINT = "dbmdz/bert-base-italian-xxl-cased"


class CheckpointError(RuntimeError):
    """The checkpoint is neither a local model directory nor reachable on the hub."""


@dataclass
class FineTuneConfig:
    model: str = field(
        default=DEFAULT_CHECKPOINT, metadata={"help": "hub id or local directory to start from"}
    )
    epochs: float = field(
        default=10.0, metadata={"help": "most epochs; early stopping usually ends sooner"}
    )
    learning_rate: float = field(
        default=5e-5, metadata={"help": "peak learning rate (5e-5 suits base-size BERTs)"}
    )
    batch_size: int = field(default=16, metadata={"help": "sentences per training step"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps spent warming up"})
    patience: int = field(
        default=2, metadata={"help": "epochs without dev macro-F1 gain before stopping"}
    )
    seed: int = field(default=42, metadata={"help": "seed for weights, shuffling and dropout"})
    num_threads: int = field(
        default=0, metadata={"help": "CPU threads for torch; 0 = one per physical core"}
    )
    max_steps: int = field(
        default=-1, metadata={"help": "stop after this many steps (-1 = epochs decide; for tests)"}
    )

    def __post_init__(self):
        positive = ("epochs", "learning_rate", "batch_size")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(
                    f"--{name}: expected a positive number, found {getattr(self, name)}"
                )
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"--warmup_ratio: expected 0 <= ratio < 1, found {self.warmup_ratio}")
        for name in ("weight_decay", "num_threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name}: expected >= 0, found {getattr(self, name)}")
        if self.patience < 1:
            raise ConfigError(f"--patience: expected >= 1, found {self.patience}")
        if not self.model.strip():
            raise ConfigError("--model: expected a hub id or a local directory, found nothing")


def check_checkpoint(name: str) -> None:
    """Fail before any training when the checkpoint cannot be loaded, saying what to do."""
    from transformers import AutoConfig

    advice = (
        "Point BERT_MODEL at a local model directory, e.g. "
        "`make train-bert BERT_MODEL=/path/to/model`; offline, `make train-offline` uses the "
        "MiniLM checkpoint that the dev extra installs."
    )
    path = Path(name).expanduser()
    looks_local = path.is_absolute() or name.startswith((".", "~")) or path.exists()
    if looks_local:
        if not (path / "config.json").is_file():
            raise CheckpointError(
                f"Checkpoint {name!r}: expected a model directory with a config.json, "
                f"found {'no such directory' if not path.exists() else 'none'}. {advice}"
            )
        return
    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"Checkpoint {name!r} is neither a local directory nor reachable on the Hugging Face "
            f"hub ({type(error).__name__}: {str(error).splitlines()[0]}). {advice}"
        ) from None


def choose_max_length(tokenizer, texts: list[str], model_limit: int) -> int:
    """The longest training sentence in tokens, rounded up to a multiple of 8, within limits."""
    longest = max(len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"])
    return min(model_limit, 8 * math.ceil(longest / 8))


def class_weights(label_ids: list[int]):
    """Inverse-frequency weights, 1.0 on average: rare classes count as much as common ones."""
    import torch

    counts = torch.bincount(torch.tensor(label_ids), minlength=len(LABELS)).float()
    if (counts == 0).any():
        missing = [LABELS[i] for i in torch.flatnonzero(counts == 0).tolist()]
        raise DataError([f"training split: expected every label, found none for {missing}"])
    return counts.sum() / (len(LABELS) * counts)


def train(data_config: DataConfig, config: FineTuneConfig) -> TrainedModel:
    """Fine-tune, evaluate, log and register one BERT."""
    import mlflow
    import psutil
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    from training.evaluate import compute_metrics

    check_checkpoint(config.model)
    splits = read_splits(data_config.labels)
    torch.set_num_threads(config.num_threads or psutil.cpu_count(logical=False) or 1)

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        config.model,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        # A checkpoint fine-tuned for another task brings a head of another size: replace it.
        ignore_mismatched_sizes=True,
    )
    # dbmdz's config declares more vocabulary than its tokenizer has; the embedding
    # matrix is kept as the config says and never resized, so that mismatch is harmless.
    model_limit = min(model.config.max_position_embeddings, tokenizer.model_max_length)
    max_length = choose_max_length(tokenizer, list(splits["train"]["text"]), model_limit)
    weights = class_weights(list(splits["train"]["label"]))

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    columns = [c for c in splits["train"].column_names if c != "label"]
    encoded = splits.map(tokenize, batched=True, remove_columns=columns)

    def weighted_loss(outputs, labels, num_items_in_batch=None):
        return torch.nn.functional.cross_entropy(outputs.logits, labels, weight=weights)

    def dev_metrics(prediction):
        predicted = [LABELS[i] for i in prediction.predictions.argmax(axis=-1)]
        return compute_metrics([LABELS[i] for i in prediction.label_ids], predicted)

    with (
        training_run("bert", [data_config, config], splits, data_config.labels) as run,
        tempfile.TemporaryDirectory(prefix="bert-checkpoints-") as checkpoints,
        tempfile.TemporaryDirectory(prefix="bert-bundle-") as folder,
    ):
        mlflow.log_params(
            {
                "derived.max_length": max_length,
                "derived.class_weights": [round(w, 4) for w in weights.tolist()],
            }
        )
        arguments = TrainingArguments(
            output_dir=checkpoints,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            learning_rate=config.learning_rate,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=2 * config.batch_size,
            weight_decay=config.weight_decay,
            warmup_steps=config.warmup_ratio,
            eval_strategy="epoch",
            save_strategy="epoch",
            save_only_model=True,
            save_total_limit=2,
            load_best_model_at_end=True,
            metric_for_best_model="macro_f1",
            greater_is_better=True,
            logging_strategy="steps",
            logging_steps=10,
            report_to=["mlflow"],
            seed=config.seed,
            data_seed=config.seed,
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=arguments,
            train_dataset=encoded["train"],
            eval_dataset=encoded["dev"],
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_loss_func=weighted_loss,
            compute_metrics=dev_metrics,
            callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience)],
        )
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
        epochs_run = max(trainer.state.epoch or 0.0, 1e-9)
        mlflow.log_metrics(
            {
                "train_seconds": train_seconds,
                "seconds_per_epoch": train_seconds / math.ceil(epochs_run),
                "epochs_run": epochs_run,
                "peak_memory_mb": peak_memory_mb(),
            }
        )

        bundle = Path(folder) / BUNDLE_ARTIFACT
        trainer.save_model(bundle)  # the best model (safetensors) and its tokenizer
        (bundle / "training_args.bin").unlink(missing_ok=True)  # a pickle; the params hold it
        shutil.copy(data_config.lexicon, bundle / LEXICON_FILE)
        metrics = log_evaluation(BertScorer(bundle, precision="fp32").predict_proba, splits)
        # Recorded in the bundle: where a precision loses more than the tolerance,
        # scoring keeps fp32 for this model (classifier.scoring.fast_precision).
        changes = measure_reduced_precisions(bundle, splits, metrics)
        write_bundle_info(
            bundle, "bert", checkpoint=config.model, max_length=max_length, macro_f1_change=changes
        )
        fast_scorer = load_scorer(bundle)  # the path users get by default
        mlflow.set_tag("fast_precision", fast_scorer.precision)
        version = log_and_register(
            bundle,
            "bert",
            list(splits["dev"]["text"][:3]),
            pinned_requirements(
                "mlflow", "torch", "transformers", "tokenizers", "safetensors", "pandas", "numpy"
            ),
            fast_scorer.predict_proba,
        )
    print(
        f"bert {config.model}: dev macro-F1 {metrics['dev_macro_f1']:.3f}, test macro-F1 "
        f"{metrics['test_macro_f1']:.3f}; scores in {fast_scorer.precision} by default here; "
        f"{epochs_run:.0f} epochs in {train_seconds:.0f}s; registered as version {version}"
    )
    return TrainedModel(version, run.info.run_id, fast_scorer.predict_proba)


def measure_reduced_precisions(bundle: Path, splits, fp32_metrics: dict) -> dict:
    """Each reduced precision's macro-F1 change from fp32 on dev and test, also logged.

    Both precisions are measured wherever training runs, because the bundle will be
    scored on CPUs of either kind.
    """
    import mlflow

    from training.evaluate import compute_metrics

    changes = {}
    for precision in ("bf16", "int8"):
        predict_proba = BertScorer(bundle, precision=precision).predict_proba
        changes[precision] = {}
        for split in ("dev", "test"):
            predicted = predict_proba(list(splits[split]["text"])).argmax(axis=1)
            macro_f1 = compute_metrics(
                [LABELS[i] for i in splits[split]["label"]], [LABELS[i] for i in predicted]
            )["macro_f1"]
            mlflow.log_metric(f"{split}_macro_f1_{precision}", macro_f1)
            changes[precision][split] = round(macro_f1 - fp32_metrics[f"{split}_macro_f1"], 6)
    return changes


def main(argv: list[str] | None = None) -> int:
    # Progress bars stay, but the hub's telemetry does not help anyone here.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return run_command(
        train, [DataConfig, FineTuneConfig], "python -m training.bert", argv, (CheckpointError,)
    )


if __name__ == "__main__":
    sys.exit(main())
