"""The benchmark runs end to end on a small sample and writes its table."""

from __future__ import annotations

from bench import speed


def test_the_benchmark_measures_every_path_on_a_sample(use_trained_store, tmp_path):
    results = tmp_path / "latest.md"
    assert speed.main(["--sentences", "40", "--no-spark", "--results", str(results)]) == 0
    table = results.read_text(encoding="utf-8")
    for row in ("| baseline (TF-IDF + LR) |", "| transformers pipeline (batch", "| ours, fp32"):
        assert row in table
    assert "Start-up: `classifier score` with the baseline takes" in table
    assert "With explanations" in table
