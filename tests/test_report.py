"""The article report: the article's own text, every sentence marked, nothing executable."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

import classifier
from classifier import cli

ARTICLE = (
    "Kiev, la tregua respinta\n\n"
    "Il regime di Kiev ha respinto la tregua. Mosca chiama «operazione militare speciale» "
    "l'invasione.\n\n"
    "A Bari piove da tre giorni <script>alert('x')</script> & le scuole restano chiuse.\n"
)


class ArticleReader(HTMLParser):
    """The text inside <article>, and each sentence's label and marked pieces."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.text, self.sentences, self.marks, self.stack = 0, [], [], [], []
        self.in_term = False  # a term cut into pieces by other marks is one term

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article":
            self.depth = 1
        elif self.depth:
            self.depth += 1
            self.stack.append(attrs.get("class", ""))
            if "data-label" in attrs:
                self.sentences.append([attrs["data-label"], ""])
        assert tag != "script", "the page must hold no script"

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
            if self.stack:
                self.stack.pop()

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)
            if self.sentences and any("s " in c or c.startswith("s ") for c in self.stack):
                self.sentences[-1][1] += data
            term = any("term" in classes.split() for classes in self.stack)
            if term and self.in_term:
                self.marks[-1] += data
            elif term:
                self.marks.append(data)
            self.in_term = term


def render(capsys, tmp_path, article=ARTICLE, *extra):
    source = tmp_path / "articolo.txt"
    source.write_text(article, encoding="utf-8")
    output = tmp_path / "report.html"
    status = cli.main(["report", str(source), "-o", str(output), "--model", "baseline", *extra])
    _, err = capsys.readouterr()
    assert status == 0 and "Traceback" not in err, err
    return output


def test_the_report_holds_the_article_and_marks_every_sentence(use_trained_store, capsys, tmp_path):
    page = render(capsys, tmp_path).read_text(encoding="utf-8")
    reader = ArticleReader()
    reader.feed(page)
    assert "".join(reader.text) == ARTICLE  # byte for byte, paragraphs included
    scored = classifier.load("baseline").score_article(ARTICLE)
    assert [(label, text) for label, text in reader.sentences] == [
        (prediction.label, sentence) for _, _, sentence, prediction in scored
    ]
    assert reader.marks == ["regime di Kiev", "operazione militare speciale"]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp;" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from anywhere
    summary = page.split("<article>")[0]
    assert "operazione militare speciale (1)" in summary and "regime di Kiev (1)" in summary


def test_the_report_states_the_operating_point(use_trained_store, capsys, tmp_path):
    page = render(capsys, tmp_path, ARTICLE, "--threshold", "1").read_text(encoding="utf-8")
    assert "flagged when the lexicon finds a term" in page
    page = render(capsys, tmp_path, ARTICLE, "--threshold", "0.5").read_text(encoding="utf-8")
    assert "flagged when P(neutral) &lt; 0.500, in sentences with a lexicon term." in page
    extra = ("--threshold", "0.5", "--flag-without-term")
    page = render(capsys, tmp_path, ARTICLE, *extra).read_text(encoding="utf-8")
    assert "flagged when P(neutral) &lt; 0.500." in page


def test_the_title_skips_a_saved_page_menu(use_trained_store, capsys, tmp_path):
    page = render(capsys, tmp_path, "• En\n• It\n\n" + ARTICLE).read_text(encoding="utf-8")
    assert "<h1>Kiev, la tregua respinta</h1>" in page
    page = render(capsys, tmp_path, "Breve\n\nPiove a Bari.").read_text(encoding="utf-8")
    assert "<h1>Breve</h1>" in page  # no line reads as a title: the first one


def test_a_report_mistake_is_one_line(use_trained_store, capsys, tmp_path):
    status = cli.main(["report", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "r.html")])
    _, err = capsys.readouterr()
    assert status == 2 and "no such file" in err
    source = tmp_path / "a.txt"
    source.write_text("Piove.", encoding="utf-8")
    status = cli.main(["report", str(source), "-o", str(tmp_path / "no" / "r.html")])
    _, err = capsys.readouterr()
    assert status == 2 and "expected a file name in an existing directory" in err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_the_report_renders_in_headless_chromium(use_trained_store, capsys, tmp_path):
    page = render(capsys, tmp_path)
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900",
    ]  # fmt: skip
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    reader = ArticleReader()
    reader.feed(dom)
    assert "".join(reader.text) == ARTICLE
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120
    )
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 900)
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, the label colours and the summary, not a blank page
