"""`mlflow models serve` answers /invocations with the same columns as the pyfunc model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import classifier
from classifier.scoring import LABELS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_served_model_answers_like_predict(use_trained_store):
    uri = "models:/framing-classifier@champion"  # what `make serve` serves
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        uri,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # MLflow starts `uvicorn` by name: the virtual environment's bin/ must be on PATH.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    server = subprocess.Popen(
        command,
        env={**os.environ, "PATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240  # a loaded CI machine starts it slowly
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the model server did not come up within 240 s")
                time.sleep(0.5)
        texts = ["Il regime di Kiev ha respinto la tregua.", "A Bari piove da tre giorni."]
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body.encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())["predictions"]
        bad = json.dumps({"dataframe_split": {"columns": ["text"], "data": [["  "]]}})
        refused = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=bad.encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=30)
        error = json.loads(caught.value.read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    expected = classifier.load(uri).predict(texts)
    # A row that is not text gets the reason itself, with 400, and no server stack trace.
    assert caught.value.code == 400 and "row 0: expected text" in error["message"]
    assert "stack_trace" not in error
    assert [list(row) for row in answer] == [["label", *LABELS, "spans"]] * 2
    assert [row["label"] for row in answer] == [p.label for p in expected]
    for row, prediction in zip(answer, expected, strict=True):
        assert [row[label] for label in LABELS] == pytest.approx(
            [prediction.scores[label] for label in LABELS]
        )


@pytest.mark.parametrize("family", ["baseline", "bert"])
def test_pyfunc_names_the_rows_it_cannot_score(use_trained_store, family):
    import mlflow
    import pandas as pd

    from classifier.api import locate_bundle

    _, uri = locate_bundle(family)
    model = mlflow.pyfunc.load_model(uri)
    texts = pd.Series(
        ["Il regime di Kiev ha parlato.", " ", "Kiev \ud800 ha parlato."], dtype=object
    )

    from mlflow.exceptions import MlflowException

    with pytest.raises(
        MlflowException, match=r"row 1: expected text, .*; row 2: expected valid Unicode"
    ):
        model.predict(pd.DataFrame({"text": texts}))
