"""Shared fixtures: the hand-written fixture data, a private MLflow store, a tiny BERT.

Nothing here touches the network or the project's own `mlruns/`. The offline switches
are set here, before anything is imported: `huggingface_hub` reads them once, at import.
A guard fails any test that opens a socket to a non-loopback address.
"""

from __future__ import annotations

import os

os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
)

import ipaddress  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import string  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
_connect = socket.socket.connect


def _loopback_only(sock, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise AssertionError(f"a test opened a connection to {address}: tests stay offline")
    return _connect(sock, address)


socket.socket.connect = _loopback_only


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Downloads and alias resolutions go to a per-session cache, never to ~/.cache."""
    monkeypatch.setenv("FRAMING_CLASSIFIER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


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
        bert.train(
            data_config,
            bert.RecipeConfig(model=str(tiny_bert)),
            bert.FineTuneArguments(num_train_epochs=1, per_device_train_batch_size=8),
        )
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
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store)
    mlflow.set_tracking_uri(trained_store)  # for tests that call MLflow themselves
    return trained_store
