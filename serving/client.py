"""A small client for TF Serving's REST API; works against this server and tensorflow_model_server.

    from serving.client import ServingClient

    client = ServingClient("http://127.0.0.1:8501")
    client.model_status("taxi")                       # versions and their states
    client.predict_rows("taxi", [{"fare": 12.5, ...}], signature_name="serving_raw")
    client.predict_columns("taxi", {"fare": [12.5, 7.0], ...}, signature_name="serving_raw")

Standard library only, so applications can copy it without taking our dependencies.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

JsonValue = Any


class ServingClientError(Exception):
    """A request the server refused or could not answer.

    Attributes:
      status: HTTP status code, or None when the server could not be reached.
      message: the server's `error` text, or what went wrong on the way.
      url: the URL that was called.
    """

    def __init__(self, status: int | None, message: str, url: str) -> None:
        super().__init__(f"{url}: {status or 'no response'}: {message}")
        self.status = status
        self.message = message
        self.url = url


class ServingClient:
    """Calls one TF Serving REST endpoint, e.g. `http://127.0.0.1:8501`."""

    def __init__(self, base_url: str = "http://127.0.0.1:8501", timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must look like http://host:port, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def model_status(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> JsonValue:
        """GET /v1/models/{model}[/versions/{v}|/labels/{l}]: `model_version_status` list."""
        return self._call("GET", self._model_url(model, version, label))

    def model_metadata(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> JsonValue:
        """GET .../metadata: the signatures with their inputs, outputs, dtypes and shapes."""
        return self._call("GET", self._model_url(model, version, label) + "/metadata")

    def predict_rows(
        self,
        model: str,
        instances: list[JsonValue],
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> JsonValue:
        """Row format: one entry per example; returns the `predictions` list."""
        body = {"instances": instances}
        if signature_name:
            body["signature_name"] = signature_name
        return self._call("POST", self._model_url(model, version, label) + ":predict", body)[
            "predictions"
        ]

    def predict_columns(
        self,
        model: str,
        inputs: JsonValue,
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> JsonValue:
        """Columnar format: one batch per named input; returns the `outputs` value."""
        body = {"inputs": inputs}
        if signature_name:
            body["signature_name"] = signature_name
        return self._call("POST", self._model_url(model, version, label) + ":predict", body)[
            "outputs"
        ]

    def classify(self, model: str, examples: list[dict], **options: Any) -> JsonValue:
        """:classify on a classification signature; returns `results` ([[label, score], ...])."""
        return self._example_call(model, "classify", examples, options)

    def regress(self, model: str, examples: list[dict], **options: Any) -> JsonValue:
        """:regress on a regression signature; returns `results` (one value per example)."""
        return self._example_call(model, "regress", examples, options)

    def _example_call(
        self, model: str, verb: str, examples: list[dict], options: dict
    ) -> JsonValue:
        body: dict[str, Any] = {"examples": examples}
        for key in ("signature_name", "context"):
            if options.get(key):
                body[key] = options[key]
        url = self._model_url(model, options.get("version"), options.get("label")) + f":{verb}"
        return self._call("POST", url, body)["results"]

    def _model_url(self, model: str, version: int | None, label: str | None) -> str:
        if version is not None and label is not None:
            raise ValueError("pass either version or label, not both")
        url = f"{self.base_url}/v1/models/{urllib.parse.quote(model, safe='')}"
        if version is not None:
            url += f"/versions/{int(version)}"
        elif label is not None:
            url += f"/labels/{urllib.parse.quote(label, safe='')}"
        return url

    def _call(self, method: str, url: str, body: JsonValue = None) -> JsonValue:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise ServingClientError(error.code, _error_text(error.read()), url) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ServingClientError(None, f"cannot reach the server: {reason}", url) from None
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise ServingClientError(
                200, f"the response is not JSON: {payload[:200]!r}", url
            ) from None


def _error_text(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["error"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return payload.decode("utf-8", "replace")[:500]
