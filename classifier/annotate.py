"""Label Studio tasks for the sentences a model is least sure of.

    classifier annotate export articolo1.txt articolo2.txt --out tasks.json --top 50

Each article is split into sentences and scored; the sentences are ranked by the margin
between the model's two most probable labels (smallest first; ties in document order),
and the `top` of them become Label Studio tasks for the labelling configuration in
`labels/label-studio.xml`: the sentence, the sentences before and after it as context,
the document and the sentence's offsets in it, and a pre-annotation (a Label Studio
"prediction"): the predicted label with its probability, and the lexicon terms as spans.
Import the file in a Label Studio project made with that configuration; once annotated,
its JSON export goes back into `labels/` with
`python -m training.data import-annotations EXPORT.json --doc-prefix ...`.

Deliberately left out: talking to a Label Studio server (the files are the interface).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classifier.bundle import LABELS

CONFIG_FILE = "label-studio.xml"  # in labels/: the labelling interface these tasks fit


def margin(scores: dict[str, float]) -> float:
    """How far the most probable label is ahead of the next one."""
    top_two = np.sort([scores[label] for label in LABELS])[-2:]
    return float(top_two[1] - top_two[0])


def sentence_task(document: str, sentences: list, index: int, model_version: str) -> dict:
    """One task: the sentence, its context, where it is, and the model's pre-annotation."""
    start, end, text, prediction = sentences[index]
    result = [
        {"from_name": "label", "to_name": "text", "type": "choices",
         "value": {"choices": [prediction.label]}},
        *(
            {"from_name": "terms", "to_name": "text", "type": "labels",
             "value": {"start": s, "end": e, "text": text[s:e], "labels": ["term"]}}
            for s, e, _ in prediction.spans
        ),
    ]  # fmt: skip
    return {
        "data": {
            "text": text,
            "context_before": sentences[index - 1][2] if index > 0 else "",
            "context_after": sentences[index + 1][2] if index + 1 < len(sentences) else "",
            "document": document,
            "start": start,
            "end": end,
        },
        "predictions": [
            {
                "model_version": model_version,
                "score": round(prediction.scores[prediction.label], 6),
                "result": result,
            }
        ],
    }


def export_tasks(model, articles: dict[str, str], top: int) -> list[dict]:
    """Tasks for the `top` least certain sentences of `articles` (name -> text)."""
    candidates = []
    for order, (name, text) in enumerate(articles.items()):
        sentences = model.score_article(text)
        for index, (start, _, _, prediction) in enumerate(sentences):
            candidates.append((margin(prediction.scores), order, start, name, sentences, index))
    candidates.sort(key=lambda item: item[:3])
    return [
        sentence_task(name, sentences, index, model.source)
        for _, _, _, name, sentences, index in candidates[:top]
    ]


def document_name(path: Path) -> str:
    return path.name
