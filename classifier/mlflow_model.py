"""The MLflow pyfunc model of both families, logged as models-from-code.

MLflow stores this file beside the model bundle and runs it on load, so nothing is
pickled. `predict` takes a DataFrame with a `text` column and returns one row per
text: `label` at the model's operating point, one probability column per label, and
`spans` (the lexicon terms, as JSON), the same for every family. `model_config` may set
`fast` (False keeps BERT in fp32), `threshold` and `require_term` (another operating
point). Serve it with
`mlflow models serve -m models:/framing-classifier@champion --env-manager local`.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from classifier.bundle import BUNDLE_ARTIFACT, LEXICON_FILE
from classifier.lexicon import Lexicon
from classifier.scoring import load_scorer, pyfunc_frame
from classifier.text import text_problem


class FramingModel(PythonModel):
    def load_context(self, context):
        config = context.model_config or {}
        bundle = Path(context.artifacts[BUNDLE_ARTIFACT])
        self.lexicon = Lexicon.read(bundle / LEXICON_FILE)
        self.scorer = load_scorer(bundle, fast=config.get("fast", True), lexicon=self.lexicon)
        # Keys left None (or models logged before they were declared) keep the bundle's.
        threshold, require_term = config.get("threshold"), config.get("require_term")
        self.threshold = self.scorer.threshold if threshold is None else threshold
        self.require_term = self.scorer.require_term if require_term is None else require_term

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, pd.DataFrame):
            if "text" not in model_input.columns:
                raise MlflowException(
                    f"expected a column 'text', found columns {list(model_input.columns)}",
                    error_code=INVALID_PARAMETER_VALUE,
                )
            texts = model_input["text"].tolist()
        else:
            texts = list(model_input)
        problems = [(i, problem) for i, text in enumerate(texts) if (problem := text_problem(text))]
        if problems:
            shown = "; ".join(f"row {i}: {problem}" for i, problem in problems[:5])
            more = f" (and {len(problems) - 5} more rows)" if len(problems) > 5 else ""
            # An MlflowException reaches the HTTP client as its message, with status 400;
            # any other exception becomes a generic message and a server stack trace.
            raise MlflowException(f"{shown}{more}", error_code=INVALID_PARAMETER_VALUE)
        return pyfunc_frame(self.scorer, self.lexicon, texts, self.threshold, self.require_term)


mlflow.models.set_model(FramingModel())
