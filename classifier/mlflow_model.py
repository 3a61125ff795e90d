"""The MLflow pyfunc model of both families, logged as models-from-code.

MLflow stores this file beside the model bundle and runs it on load, so nothing is
pickled. `predict` takes a DataFrame with a `text` column and returns one row per
text: `label`, then one probability column per label, the same for every family.
Serve it with `mlflow models serve -m models:/framing-classifier/<version> --env-manager local`.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from classifier.bundle import BUNDLE_ARTIFACT
from classifier.scoring import load_scorer, probabilities_to_frame
from classifier.text import text_problem


class FramingModel(PythonModel):
    def load_context(self, context):
        # `mlflow.pyfunc.load_model(uri, model_config={"fast": False})` keeps BERT in fp32.
        fast = (context.model_config or {}).get("fast", True)
        self.scorer = load_scorer(context.artifacts[BUNDLE_ARTIFACT], fast=fast)

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, pd.DataFrame):
            if "text" not in model_input.columns:
                raise ValueError(
                    f"expected a column 'text', found columns {list(model_input.columns)}"
                )
            texts = model_input["text"].tolist()
        else:
            texts = list(model_input)
        problems = [(i, problem) for i, text in enumerate(texts) if (problem := text_problem(text))]
        if problems:
            shown = "; ".join(f"row {i}: {problem}" for i, problem in problems[:5])
            more = f" (and {len(problems) - 5} more rows)" if len(problems) > 5 else ""
            raise ValueError(f"{shown}{more}")
        return probabilities_to_frame(self.scorer.predict_proba(texts), self.scorer.threshold)


mlflow.models.set_model(FramingModel())
