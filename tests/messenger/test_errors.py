"""Bad input gets one JSON error shape with a stable code, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return body["error"]


def test_malformed_json_is_a_400_with_a_stable_code(client: Client) -> None:
    response = client.post("/api/v1/sessions", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_body"


def test_wrong_types_are_a_400_naming_the_field(client: Client) -> None:
    response = client.post(
        "/api/v1/sessions", {"challenge": 12, "nonce": []}, content_type="application/json"
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "challenge" in error["message"]


def test_non_base64url_fields_are_a_400(client: Client) -> None:
    response = client.post(
        "/api/v1/sessions", {"challenge": "!!", "nonce": "??"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


def test_an_oversized_body_is_a_413(client: Client) -> None:
    body = '{"challenge": "' + "A" * (200 * 1024) + '"}'
    response = client.post("/api/v1/sessions", body, content_type="application/json")
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_an_unknown_path_is_a_json_404(client: Client) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_wrong_method_is_a_4xx(client: Client) -> None:
    response = client.put("/api/v1/policy")
    assert 400 <= response.status_code < 500


def test_a_missing_token_is_a_401_with_the_bearer_challenge(client: Client) -> None:
    response = client.delete("/api/v1/sessions")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_openapi_schema_is_served_and_lists_the_core_endpoints(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/sessions", "/api/v1/challenges", "/api/v1/policy"):
        assert path in schema["paths"], path


def test_the_policy_lists_what_clients_show(client: Client, settings) -> None:
    policy = client.get("/api/v1/policy").json()
    assert policy["envelopes"]["bucket_sizes"] == settings.ENVELOPE_BUCKETS
    assert policy["blobs"]["chunk_sizes"] == settings.BLOB_CHUNK_SIZES
    assert policy["session"]["pow_difficulty"] == settings.POW_DIFFICULTY
    assert policy["server_version"]


def test_healthz_answers_ok(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
