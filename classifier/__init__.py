"""Tell neutral, quoted and adopted state-media language apart in Italian news sentences.

import classifier
model = classifier.load()
model.predict(["L'operazione militare speciale prosegue."])[0].label   # "adopted"
"""

from classifier.api import InputError, Model, Prediction, load
from classifier.explain import Attribution
from classifier.lexicon import Span
from classifier.scoring import LABELS
from classifier.store import ModelNotFoundError

__all__ = [
    "LABELS",
    "Attribution",
    "InputError",
    "Model",
    "ModelNotFoundError",
    "Prediction",
    "Span",
    "load",
]
