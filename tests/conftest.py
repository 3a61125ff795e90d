"""Shared fixtures: the hand-written fixture data, a private MLflow store, a tiny BERT.

Nothing here touches the network or the project's own `mlruns/`.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test runs as if the model hub were unreachable."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def fixture_dir(tmp_path) -> Path:
    """A writable copy of tests/fixtures (sentences, documents, lexicon, seeds)."""
    target = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, target)
    return target


@pytest.fixture
def tracking_store(tmp_path, monkeypatch) -> str:
    """A fresh sqlite MLflow store in tmp_path, set as MLFLOW_TRACKING_URI."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def build_tiny_bert(directory: Path, texts: list[str]) -> Path:
    """A 2-layer, 32-wide BERT and a WordPiece tokenizer trained on `texts`, saved to disk.

    The config declares more vocabulary than the tokenizer has, as
    dbmdz/bert-base-italian-xxl-cased does, so that mismatch is exercised too.
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # An initial alphabet covering Italian letters and punctuation: no character is [UNK].
    alphabet = sorted(
        set(string.printable.strip() + "àèéìíòóùúÀÈÉÌÒÙ«»“”‘’–—…") | set("".join(texts))
    )
    trainer = trainers.WordPieceTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=alphabet
    )
    tokenizer.train_from_iterator(texts, trainer)
    from tokenizers.processors import TemplateProcessing

    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[
            ("[CLS]", tokenizer.token_to_id("[CLS]")),
            ("[SEP]", tokenizer.token_to_id("[SEP]")),
        ],
    )
    from tokenizers import decoders

    tokenizer.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=64,
    )  # fmt: skip
    config = BertConfig(
        vocab_size=fast.vocab_size + 50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        pad_token_id=fast.pad_token_id,
    )
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)  # the same weights every session: a failure reproduces
    BertModel(config).save_pretrained(directory)  # no head, as a pretrained checkpoint
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    texts = [row["text"] for row in read_rows(FIXTURES / "sentences.jsonl")]
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), texts)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, tiny_bert) -> str:
    """A store holding one baseline and one tiny BERT trained on the fixture (once per session)."""
    import os

    import mlflow

    from training import baseline, bert
    from training.data import DataConfig

    folder = tmp_path_factory.mktemp("trained-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        data_config = DataConfig(FIXTURES / "sentences.jsonl", FIXTURES / "lexicon.tsv")
        baseline.train(data_config, baseline.BaselineConfig(c_values=[10.0]))
        bert.train(data_config, bert.FineTuneConfig(model=str(tiny_bert), epochs=1, batch_size=8))
    finally:
        if previous is None:
            del os.environ["MLFLOW_TRACKING_URI"]
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        while mlflow.active_run():
            mlflow.end_run()
    return uri


@pytest.fixture
def use_trained_store(trained_store, monkeypatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store)
    return trained_store
