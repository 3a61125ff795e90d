"""The TF-IDF features of a fitted scikit-learn `TfidfVectorizer`, computed with numpy.

scikit-learn builds every n-gram of every sentence as a Python string and looks it up
in a dict, one at a time: for the baseline's character 5-grams that is about 130
lookups per sentence, and it held scoring below 15,000 sentences/s. Here each text
becomes an array of symbol numbers (its characters, or its word tokens), numbered
after the fitted vocabulary; an n-gram is then one integer, its symbols read as the
digits of a number in base `len(symbols) + 1`; and a hash index of the vocabulary's
codes (a pandas `Index`) finds the columns of every n-gram of a batch at once. A symbol the
vocabulary never uses is digit 0, which no vocabulary code contains, so n-grams with
it match nothing, as in scikit-learn. Counting, sublinear tf, idf and normalisation
then follow `TfidfTransformer` exactly: the matrix is the one `vectorizer.transform`
returns (the tests compare them on every sentence of the data).

Training still fits a plain scikit-learn `Pipeline`, which is what the bundle stores;
this module only reads the fitted vocabulary and idf at load time.

Deliberately left out: vectoriser options this project never trains (callable
analyzers, tokenizers or preprocessors, stop words, accent stripping, binary counts,
`char_wb`, file input). For those `compile_vectorizer` returns None and the caller
keeps scikit-learn's own transform: the same numbers, only slower.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import chain, repeat

import numpy as np

# The whitespace rule of scikit-learn's character analyzer: runs of two or more
# whitespace characters become one space; a single tab or newline stays as it is.
WHITE_SPACES = re.compile(r"\s\s+")
MAX_CODE = np.iinfo(np.int64).max


class CompiledTfidf:
    """`transform(texts)` of one fitted `TfidfVectorizer`, vectorised over the batch.

    `terms_as_symbols` maps each vocabulary term to its symbols: its characters, or
    its word tokens. `tokenize` is None for characters, else the token regex's findall.
    """

    def __init__(self, vectorizer, terms_as_symbols: dict, tokenize: Callable | None):
        import pandas as pd

        self.tokenize = tokenize
        self.lowercase = vectorizer.lowercase
        self.n_features = len(vectorizer.vocabulary_)
        self.sublinear_tf = vectorizer.sublinear_tf
        self.idf = vectorizer.idf_ if vectorizer.use_idf else None
        self.norm = vectorizer.norm
        self.dtype = vectorizer.dtype

        symbols = sorted(set(chain.from_iterable(terms_as_symbols.values())))
        self.symbol_ids = {symbol: number for number, symbol in enumerate(symbols, start=1)}
        self.base = len(symbols) + 1
        if tokenize is None:
            # Characters are numbered through an array indexed by code point; the last
            # entry (0) stands for every code point beyond the vocabulary's largest.
            self.id_of_code_point = np.zeros(max(map(ord, symbols), default=0) + 2, np.int64)
            for symbol, number in self.symbol_ids.items():
                self.id_of_code_point[ord(symbol)] = number
        min_n, max_n = vectorizer.ngram_range
        # Per n-gram length, a hash index of the vocabulary's codes and their columns.
        self.tables = {}
        for n in range(min_n, max_n + 1):
            pairs = [
                (self._code_of(parts), column)
                for term, column in vectorizer.vocabulary_.items()
                if len(parts := terms_as_symbols[term]) == n
            ]
            codes = pd.Index(np.array([code for code, _ in pairs], dtype=np.int64))
            codes.get_indexer(codes[:1])  # builds the hash table now, not in a scoring thread
            self.tables[n] = (codes, np.array([column for _, column in pairs], dtype=np.int64))

    def _code_of(self, symbols: Sequence[str]) -> int:
        code = 0
        for symbol in symbols:
            code = code * self.base + self.symbol_ids[symbol]
        return code

    def _symbol_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The symbol numbers of all texts end to end, and each text's number of symbols."""
        texts = [text.lower() for text in texts] if self.lowercase else list(texts)
        if self.tokenize is None:
            texts = [WHITE_SPACES.sub(" ", text) for text in texts]
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
            # UTF-32 spends four bytes on every character, lone surrogates included.
            code_points = np.frombuffer(
                "".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
            )
            return self.id_of_code_point.take(code_points, mode="clip"), lengths
        documents = [self.tokenize(text) for text in texts]
        lengths = np.fromiter(map(len, documents), dtype=np.int64, count=len(documents))
        tokens = list(chain.from_iterable(documents))
        ids = map(self.symbol_ids.get, tokens, repeat(0))
        return np.fromiter(ids, dtype=np.int64, count=len(tokens)), lengths

    def transform(self, texts: Sequence[str]):
        import scipy.sparse as sp
        from sklearn.preprocessing import normalize

        ids, lengths = self._symbol_ids(texts)
        ends = np.cumsum(lengths)
        document_of = np.repeat(np.arange(len(lengths)), lengths)
        rows, columns = [], []
        for n, (table_codes, table_columns) in self.tables.items():
            starts = len(ids) - n + 1
            if starts <= 0 or not len(table_codes):
                continue
            codes = ids[:starts].copy()
            for offset in range(1, n):
                codes = codes * self.base + ids[offset : offset + starts]
            found = table_codes.get_indexer(codes)
            # An n-gram counts only if it ends inside the text it starts in.
            hit = (found >= 0) & (np.arange(n, starts + n) <= ends[document_of[:starts]])
            rows.append(document_of[:starts][hit])
            columns.append(table_columns[found[hit]])

        rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        columns = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        # Building from (row, column) pairs sums repeated pairs: these are the counts.
        matrix = sp.csr_array(
            (np.ones(len(rows), dtype=self.dtype), (rows, columns)),
            shape=(len(lengths), self.n_features),
        )
        matrix.sum_duplicates()
        if self.sublinear_tf:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        if self.idf is not None:
            matrix.data *= self.idf[matrix.indices]
        if self.norm is not None and len(lengths):
            matrix = normalize(matrix, norm=self.norm, copy=False)
        return matrix


def compile_vectorizer(vectorizer) -> CompiledTfidf | None:
    """A `CompiledTfidf` for a fitted `TfidfVectorizer`, or None for options it lacks."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not isinstance(vectorizer, TfidfVectorizer) or not hasattr(vectorizer, "vocabulary_"):
        return None
    plain = (
        vectorizer.input == "content"
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.stop_words is None
        and vectorizer.strip_accents is None
        and not vectorizer.binary
    )
    if not plain:
        return None
    vocabulary = vectorizer.vocabulary_
    if vectorizer.analyzer == "char":
        tokenize = None
        terms_as_symbols = {term: list(term) for term in vocabulary}
    elif vectorizer.analyzer == "word":
        tokenize = re.compile(vectorizer.token_pattern).findall
        # Word n-grams are their tokens joined by spaces. Splitting a term back into
        # tokens is only safe if no token holds a space: check that the tokenizer
        # reads every term as exactly those tokens.
        terms_as_symbols = {term: term.split(" ") for term in vocabulary}
        if any(tokenize(term) != parts for term, parts in terms_as_symbols.items()):
            return None
    else:
        return None
    n_symbols = len(set(chain.from_iterable(terms_as_symbols.values())))
    if (n_symbols + 1) ** vectorizer.ngram_range[1] > MAX_CODE:
        return None  # codes would overflow int64
    return CompiledTfidf(vectorizer, terms_as_symbols, tokenize)


def compile_features(features, column: str = "text") -> Callable | None:
    """texts -> the matrix `features.transform` gives for a DataFrame of those texts.

    `features` is a fitted `ColumnTransformer` whose every part is a `TfidfVectorizer`
    of `column`, as the baseline builds it; anything else gives None.
    """
    import scipy.sparse as sp
    from sklearn.compose import ColumnTransformer

    if not isinstance(features, ColumnTransformer) or not features.sparse_output_:
        return None
    parts = []
    for _name, transformer, columns in features.transformers_:
        if transformer == "drop":
            continue
        compiled = compile_vectorizer(transformer) if columns == column else None
        if compiled is None:
            return None
        parts.append(compiled)

    def transform(texts: Sequence[str]):
        return sp.hstack([part.transform(texts) for part in parts], format="csr")

    return transform
