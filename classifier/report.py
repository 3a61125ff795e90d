"""One article as a self-contained HTML page: each sentence coloured by its label.

    classifier report articolo.txt -o report.html

The page holds a summary (sentences per label, the lexicon terms found with their
counts, the model and its operating point), a legend, and the article as it was written:
its text byte for byte (white space and paragraphs kept by `white-space: pre-wrap`),
each sentence a focusable element coloured by label whose probabilities show on hover or
keyboard focus (a CSS pseudo-element: the page's text stays the article's), lexicon terms
underlined, and, in flagged sentences, the words the model leaned on
(`classifier.explain`) marked with a dotted line, with a checkbox that hides them. No
script, no network: inline CSS only. Every piece of the article is HTML-escaped, so an
article holding `<script>` shows it as text.

Deliberately left out: more than one article per page, and any editing.
"""

from __future__ import annotations

import collections
import html

from classifier.bundle import LABELS

COLOURS = {"neutral": "#e8f3ea", "quoted": "#fff1c7", "adopted": "#fbd3cf"}
BORDERS = {"neutral": "#9cc5a5", "quoted": "#d9a400", "adopted": "#c0392b"}
STYLE = """
body { font: 17px/1.6 Georgia, "Times New Roman", serif; max-width: 52rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d1d1d; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
.summary { font: 15px/1.5 system-ui, sans-serif; background: #f6f6f4; padding: .8rem 1rem;
           border-radius: 6px; }
.summary table { border-collapse: collapse; margin: .4rem 0; }
.summary td, .summary th { padding: .1rem .8rem .1rem 0; text-align: left; }
.legend { font: 14px system-ui, sans-serif; margin: 1rem 0; }
.legend span { padding: .1rem .5rem; margin-right: .6rem; border-radius: 3px; }
article { white-space: pre-wrap; }
.s { position: relative; padding: .1rem 0; border-radius: 3px; }
.s:focus { outline: 2px solid #333; }
.s:hover::after, .s:focus::after { content: attr(data-tip); position: absolute; left: 0;
  top: 1.7em; z-index: 2; white-space: nowrap; font: 13px system-ui, sans-serif;
  background: #222; color: #fff; padding: .2rem .5rem; border-radius: 4px; }
.term { text-decoration: underline 2px; text-underline-offset: 3px; }
.attr { border-bottom: 2px dotted #333; }
#hide-attributions:checked ~ article .attr { border-bottom: none; }
@media print {
  .toggle { display: none !important; }
  .s[data-label="quoted"]::after { content: " [quoted]"; font-size: .8em; }
  .s[data-label="adopted"]::after { content: " [adopted]"; font-size: .8em; }
}
""" + "".join(
    f".{label} {{ background: {COLOURS[label]}; box-shadow: inset 0 -2px {BORDERS[label]}; }}\n"
    for label in LABELS
)


def render_report(
    text: str,
    scored,
    model_name: str,
    threshold: float | None,
    title: str,
    require_term: bool = False,
) -> str:
    """The page for `text`, given `scored` = `Model.score_article(text, explain=...)`."""
    counts = collections.Counter(prediction.label for *_, prediction in scored)
    terms = collections.Counter(span.term for *_, prediction in scored for span in prediction.spans)
    pieces, position = [], 0
    for start, end, sentence, prediction in scored:
        pieces.append(html.escape(text[position:start]))
        pieces.append(_sentence(sentence, prediction))
        position = end
    pieces.append(html.escape(text[position:]))
    flagged = counts["quoted"] + counts["adopted"]
    rows = "".join(f"<tr><td>{label}</td><td>{counts[label]}</td></tr>" for label in LABELS)
    found = ", ".join(f"{html.escape(term)} ({n})" for term, n in terms.most_common()) or "none"
    if threshold is None:
        point = "the most probable label"
    elif threshold >= 1 and require_term:
        point = "the lexicon finds a term (any P(neutral) below 1)"
    else:
        point = f"P(neutral) &lt; {threshold:.3f}"
        point += ", in sentences with a lexicon term" if require_term else ""
    legend = "".join(f'<span class="{label}">{label}</span>' for label in LABELS)
    return f"""<!DOCTYPE html>
<html lang="it">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<section class="summary" aria-label="summary">
<p><strong>{flagged}</strong> of {len(scored)} sentences flagged as propaganda language
({counts["quoted"]} quoted, {counts["adopted"]} adopted).</p>
<table><tr><th>label</th><th>sentences</th></tr>{rows}</table>
<p>Lexicon terms: {found}.</p>
<p>Model: {html.escape(model_name)}; flagged when {point}.</p>
</section>
<p class="legend">{legend}<span class="term">lexicon term</span>
<span class="attr">words the model leaned on (flagged sentences)</span></p>
<input type="checkbox" id="hide-attributions" class="toggle">
<label for="hide-attributions" class="toggle">hide the words the model leaned on</label>
<article>{"".join(pieces)}</article>
</body>
</html>
"""


def _sentence(sentence: str, prediction) -> str:
    """One sentence: its segments marked as term and/or attribution, and its tooltip."""
    marks = [(s.start, s.end, "term") for s in prediction.spans]
    if prediction.label != "neutral":  # why a plain sentence is plain is not worth marking
        marks += [(a.start, a.end, "attr") for a in prediction.attributions]
    cuts = sorted({0, len(sentence), *(p for s, e, _ in marks for p in (s, e))})
    inner = []
    for left, right in zip(cuts, cuts[1:], strict=False):
        classes = [kind for s, e, kind in marks if s <= left and right <= e]
        piece = html.escape(sentence[left:right])
        inner.append(
            f'<span class="{" ".join(sorted(set(classes)))}">{piece}</span>' if classes else piece
        )
    scores = " · ".join(f"{label} {prediction.scores[label]:.2f}" for label in LABELS)
    # The probabilities live in an attribute that CSS shows on hover and focus, so the
    # page's text stays the article's own.
    tip = html.escape(f"{prediction.label} — {scores}", quote=True)
    return (
        f'<span class="s {prediction.label}" data-label="{prediction.label}" '
        f'data-tip="{tip}" tabindex="0">{"".join(inner)}</span>'
    )
