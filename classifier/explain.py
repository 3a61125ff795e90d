"""Which words pushed a prediction towards its label: character spans with a weight.

`Attribution(start, end, weight)` points into the sentence as given; `weight` is in logit
units, positive for words that pushed towards the label. Both families attribute the
label's logit minus the mean logit (what the softmax sees), then add up the
contributions of each word (a run of letters and digits, or one punctuation mark such
as a quotation mark), keep the `TOP` words that pushed most and join adjacent ones into
one span.

- Baseline: exact. A logistic regression's logit is a sum over its features, so each
  word or character n-gram contributes its TF-IDF value times its coefficient; an
  n-gram found several times shares its contribution between its occurrences, and a
  character n-gram across two words shares it by the characters it covers. A word
  n-gram of the masked text (terms replaced by a placeholder) is spread over the words
  it stands for, the term's included.
- BERT: integrated gradients (Sundararajan et al., 2017) from Captum, on the word
  embeddings, against a baseline of padding tokens; word pieces add up into words. Its
  token scores sum to the logit difference between the sentence and the baseline
  (completeness), up to the approximation that `STEPS` controls.

Deliberately left out: attributions for labels other than the predicted one, and any
claim that a weight is a cause: it says what the model leaned on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from classifier.text import normalise_with_offsets

TOP = 5  # words kept per sentence: enough to see why, few enough to read
STEPS = 16  # integration steps for BERT: completeness holds to a few percent on this data
UNIT = re.compile(r"\w+|[^\w\s]")


class Attribution(NamedTuple):
    start: int  # offsets into the sentence as given; sentence[start:end] is the span
    end: int
    weight: float  # the span's push towards the predicted label, in logit units


def top_spans(units: Sequence[tuple[int, int, float]], top: int = TOP) -> list[tuple]:
    """The `top` units with the largest positive score, adjacent ones joined, best first.

    `units` are (start, end, score) in text order.
    """
    chosen = sorted(
        (i for i, (_, _, score) in enumerate(units) if score > 0),
        key=lambda i: -units[i][2],
    )[:top]
    spans, run = [], []
    for i in sorted(chosen):
        if run and i != run[-1] + 1:
            spans.append(run)
            run = []
        run.append(i)
    if run:
        spans.append(run)
    joined = [(units[r[0]][0], units[r[-1]][1], sum(units[i][2] for i in r)) for r in spans]
    return sorted(joined, key=lambda span: -span[2])


def _to_original(spans, starts: list[int], ends: list[int]) -> tuple[Attribution, ...]:
    """Spans in normalised text, as offsets into the text the user gave."""
    return tuple(
        Attribution(starts[start], ends[end - 1], float(weight)) for start, end, weight in spans
    )


def _units(text: str) -> list[list]:
    return [[m.start(), m.end(), 0.0] for m in UNIT.finditer(text)]


def _spread(units: list[list], start: int, end: int, amount: float) -> None:
    """Add `amount` to the units that [start, end) overlaps, by the characters it covers."""
    overlaps = [(u, min(end, u[1]) - max(start, u[0])) for u in units]
    overlaps = [(u, n) for u, n in overlaps if n > 0]
    covered = sum(n for _, n in overlaps)
    for unit, n in overlaps:
        unit[2] += amount * n / covered


def _lowered(text: str) -> str:
    """Lowercase, one character for one character, so that positions stay put."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _word_ngrams(vectorizer, text: str) -> dict[str, list[tuple[int, int]]]:
    """Where each word n-gram of a fitted TfidfVectorizer occurs in `text`."""
    source = _lowered(text) if vectorizer.lowercase else text
    tokens = [
        (m.group(), m.start(), m.end()) for m in re.finditer(vectorizer.token_pattern, source)
    ]
    low, high = vectorizer.ngram_range
    found: dict[str, list[tuple[int, int]]] = {}
    for n in range(low, high + 1):
        for i in range(len(tokens) - n + 1):
            gram = " ".join(token for token, _, _ in tokens[i : i + n])
            found.setdefault(gram, []).append((tokens[i][1], tokens[i + n - 1][2]))
    return found


def _char_ngrams(vectorizer, text: str) -> dict[str, list[tuple[int, int]]]:
    """Where each character n-gram (analyzer="char") occurs in `text`.

    scikit-learn collapses runs of white space into one space first; positions are
    mapped back through that.
    """
    source = _lowered(text) if vectorizer.lowercase else text
    collapsed, positions = [], []
    for match in re.finditer(r"\s\s+|.", source, flags=re.S):
        collapsed.append(" " if len(match.group()) > 1 else match.group())
        positions.append((match.start(), match.end()))
    collapsed = "".join(collapsed)
    low, high = vectorizer.ngram_range
    found: dict[str, list[tuple[int, int]]] = {}
    for n in range(low, high + 1):
        for i in range(len(collapsed) - n + 1):
            found.setdefault(collapsed[i : i + n], []).append(
                (positions[i][0], positions[i + n - 1][1])
            )
    return found


def explain_baseline(
    pipeline, texts: Sequence[str], columns: Sequence[int], lexicon=None, top: int = TOP
):
    """Attributions of a TF-IDF + logistic-regression pipeline for the label column of each text.

    `columns[i]` is the index, in the pipeline's own class order, of text i's label.
    `lexicon`: the one a pipeline with a `masked` column reads (`classifier.scoring`); an
    n-gram of the masked text that holds the placeholder points at the term it stands for.
    """
    from classifier.scoring import MASKED_COLUMN, baseline_frame

    features, classifier = pipeline[0], pipeline[-1]
    normalised = [normalise_with_offsets(text) for text in texts]
    matrix = features.transform(baseline_frame([n for n, _, _ in normalised], lexicon)).tocsr()
    coefficients = classifier.coef_
    # Where each transformer's features sit in the joint matrix, what each one is, and
    # which column it reads.
    blocks, offset = [], 0
    for _, vectorizer, column in features.transformers_:
        size = len(vectorizer.vocabulary_)
        names = vectorizer.get_feature_names_out()
        blocks.append((offset, offset + size, vectorizer, names, column == MASKED_COLUMN))
        offset += size
    results = []
    for i, (text, starts, ends) in enumerate(normalised):
        row = matrix.getrow(i)
        push = row.data * (
            coefficients[columns[i], row.indices] - coefficients[:, row.indices].mean(axis=0)
        )
        units = _units(text)
        masked = lexicon.mask(text) if lexicon is not None else None
        for low, high, vectorizer, names, reads_masked in blocks:
            chosen = (row.indices >= low) & (row.indices < high)
            if not chosen.any():
                continue
            ngrams = _char_ngrams if vectorizer.analyzer == "char" else _word_ngrams
            if reads_masked:
                source, from_start, from_end = masked
                occurs = {
                    gram: [(from_start[a], from_end[b - 1]) for a, b in places]
                    for gram, places in ngrams(vectorizer, source).items()
                }
            else:
                occurs = ngrams(vectorizer, text)
            for index, amount in zip(row.indices[chosen], push[chosen], strict=True):
                places = occurs.get(names[index - low], [])
                for start, end in places:
                    _spread(units, start, end, amount / len(places))
        spans = top_spans([tuple(u) for u in units], top)
        results.append(_to_original(spans, starts, ends))
    return results


def explain_bert(model, tokenizer, texts: Sequence[str], label_ids: Sequence[int],
                 max_length: int, top: int = TOP, steps: int = STEPS):  # fmt: skip
    """Integrated-gradients attributions of a sequence classifier for each text's label.

    Returns (attributions per text, token scores per text, and the completeness gap
    per text: token scores' sum minus the logit difference they should add up to).
    """
    import torch
    from captum.attr import LayerIntegratedGradients

    def centred_logits(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        return logits - logits.mean(dim=-1, keepdim=True)

    embeddings = model.get_input_embeddings()
    integrated = LayerIntegratedGradients(centred_logits, embeddings)
    results, scores, gaps = [], [], []
    for text, label in zip(texts, label_ids, strict=True):
        normalised, starts, ends = normalise_with_offsets(text)
        encoded = tokenizer(
            normalised, return_offsets_mapping=True, truncation=True, max_length=max_length,
            return_special_tokens_mask=True, return_tensors="pt",
        )  # fmt: skip
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        special = encoded["special_tokens_mask"].bool()
        reference = torch.where(special, ids, torch.full_like(ids, tokenizer.pad_token_id))
        with torch.enable_grad():
            attributions, delta = integrated.attribute(
                inputs=ids, baselines=reference, additional_forward_args=(mask,),
                target=int(label), n_steps=steps, return_convergence_delta=True,
            )  # fmt: skip
        token_scores = attributions.sum(dim=-1)[0].detach().float().numpy()
        scores.append(token_scores)
        gaps.append(float(delta[0]))
        units: list[list] = []
        for (start, end), score, is_special in zip(
            encoded["offset_mapping"][0].tolist(), token_scores, special[0].tolist(), strict=True
        ):
            if is_special or start == end:
                continue
            if units and start == units[-1][1]:  # a word piece continuing the word before
                units[-1][1] = end
                units[-1][2] += float(score)
            else:
                units.append([start, end, float(score)])
        results.append(_to_original(top_spans([tuple(u) for u in units], top), starts, ends))
    return results, scores, np.array(gaps)
