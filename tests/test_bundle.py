"""A bundle is verified before it scores: every broken one is a clear error naming the file."""

from __future__ import annotations

import json
import shutil

import pytest

import classifier
from classifier.api import locate_bundle
from classifier.bundle import BUNDLE_FILE, BundleError, read_bundle, write_bundle


@pytest.fixture
def bundles(use_trained_store, tmp_path):
    """Copies of the trained baseline's and tiny BERT's bundles, to break."""
    copies = {}
    for family in ("baseline", "bert"):
        source, _ = locate_bundle(family)
        copies[family] = shutil.copytree(source, tmp_path / family)
    return copies


def test_write_bundle_records_every_file_and_read_bundle_accepts_it(bundles):
    for family, bundle in bundles.items():
        info = read_bundle(bundle)
        files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
        assert set(info["files"]) == files - {BUNDLE_FILE}
        assert info["family"] == family and "threshold" in info and "temperature" in info


def truncate(path):
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


def write(name: str, content: bytes):
    return lambda bundle: (bundle / name).write_bytes(content)


BREAKS = {
    "missing tokenizer.json": ("bert", lambda b: (b / "tokenizer.json").unlink(), "tokenizer.json"),
    "truncated safetensors": ("bert", lambda b: truncate(b / "model.safetensors"),
                              "model.safetensors"),
    "edited config": ("bert", write("config.json", b'{"num_labels": 2}'), "config.json"),
    "truncated pipeline": ("baseline", lambda b: truncate(b / "pipeline.skops"), "pipeline.skops"),
    "lexicon not UTF-8": ("baseline", write("lexicon.tsv", b"\xff\xfe term"), "lexicon.tsv"),
    "classifier.json truncated": ("baseline", lambda b: truncate(b / BUNDLE_FILE), BUNDLE_FILE),
    "classifier.json a list": ("baseline", write(BUNDLE_FILE, b"[1, 2]"), BUNDLE_FILE),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_bundle_never_scores(bundles, case):
    family, breaker, name = BREAKS[case]
    bundle = bundles[family]
    breaker(bundle)
    with pytest.raises(BundleError, match=name.replace(".", r"\.")):
        read_bundle(bundle)
    with pytest.raises(classifier.ModelNotFoundError, match=name.replace(".", r"\.")):
        classifier.load(str(bundle))


def test_an_unknown_family_or_no_hashes_is_refused(bundles, tmp_path):
    bundle = bundles["baseline"]
    info = json.loads((bundle / BUNDLE_FILE).read_text())
    (bundle / BUNDLE_FILE).write_text(json.dumps({**info, "family": "svm"}))
    with pytest.raises(BundleError, match="expected family in"):
        read_bundle(bundle)
    (bundle / BUNDLE_FILE).write_text(json.dumps({k: v for k, v in info.items() if k != "files"}))
    with pytest.raises(BundleError, match="retrain it with `make train`"):
        read_bundle(bundle)


def test_write_bundle_refuses_a_bundle_without_its_weights(tmp_path):
    from conftest import FIXTURES

    with pytest.raises(BundleError, match="needs"):
        write_bundle(tmp_path, "baseline", FIXTURES / "lexicon.tsv")
