"""The vendor docs: the OpenAPI schema at /api/schema/ and the page at /docs/."""

import re

import jsonschema
import pytest

GUIDE_REQUEST_ID = "12345678-1234-1234-1234-123456789abc"
GUIDE_TIMESTAMP = "2025-09-19T17:45:23.123Z"


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _ping(schema):
    return schema["paths"]["/functions/v1/vendors-ping"]["post"]


def _examples(schema, status):
    content = _ping(schema)["responses"][status]["content"]["application/json"]
    return [example["value"] for example in content["examples"].values()]


def test_it_documents_only_the_vendor_endpoints(schema):
    assert sorted(schema["paths"]) == ["/api/v1/vendor/calls", "/functions/v1/vendors-ping"]
    assert list(schema["paths"]["/functions/v1/vendors-ping"]) == ["post"]


def test_it_documents_every_answer_of_the_contract(schema):
    assert sorted(_ping(schema)["responses"]) == [
        "200", "400", "401", "403", "405", "413", "429", "500", "503"
    ]  # fmt: skip


def test_it_shows_the_guides_examples(schema):
    assert {
        "status": 200,
        "data": {
            "agentAvailable": True,
            "transferTarget": "+18775703926",
            "ttlSeconds": 60,
            "agentCount": 3,
            "timestamp": GUIDE_TIMESTAMP,
            "requestId": GUIDE_REQUEST_ID,
        },
    } in _examples(schema, "200")
    assert {
        "status": 200,
        "data": {"agentAvailable": False, "reason": "no_agent", "retryAfterSeconds": 42,
                 "timestamp": GUIDE_TIMESTAMP, "requestId": GUIDE_REQUEST_ID},
    } in _examples(schema, "200")  # fmt: skip
    assert {
        "status": 200,
        "data": {"vendorActive": True, "authorizedStates": ["AZ", "CA"],
                 "requestId": GUIDE_REQUEST_ID},
    } in _examples(schema, "200")  # fmt: skip
    messages = {
        status: {example["data"]["message"] for example in _examples(schema, status)}
        for status in ["400", "401", "403", "405", "413", "429", "500", "503"]
    }
    assert messages == {
        "400": {
            "Invalid phone number format. Please provide a valid US phone number.",
            "Invalid state code. Please provide a valid two-letter US state code.",
            "Request body must be a JSON object.",
        },
        "401": {"Vendor key was not found or not formatted correctly."},
        "403": {"Vendor is not active.", "Vendor is not authorized for state TX."},
        "405": {"Method not allowed. Use POST."},
        "413": {"Request body too large."},
        "429": {"Too many requests."},
        "500": {"An unexpected condition was encountered by the server."},
        "503": {"The service is busy. Please retry shortly."},
    }


def test_it_documents_the_request_body_and_open_tracking_fields(schema):
    body = schema["components"]["schemas"]["PingRequest"]
    assert body["required"] == ["vendorKey"]
    # The consent evidence fields are tracking data the ping also reads.
    assert set(body["properties"]) == {
        "vendorKey",
        "phoneNumber",
        "stateCode",
        "xxTrustedFormCertUrl",
        "jornaya_leadid",
    }
    assert body["additionalProperties"] is True
    # Some vendor tools label the JSON body text/plain: documented, so the fuzz test sends it too.
    assert sorted(_ping(schema)["requestBody"]["content"]) == ["application/json", "text/plain"]
    ping_example = _ping(schema)["requestBody"]["content"]["application/json"]["examples"]["Ping"]
    assert ping_example["value"]["lead_id"] == "L-12345"


def test_it_documents_retry_after_on_429_and_the_request_id_everywhere(schema):
    responses = _ping(schema)["responses"]
    assert responses["429"]["headers"]["Retry-After"]["required"] is True
    for status, response in responses.items():
        assert response["headers"]["X-Request-ID"]["required"] is True, status


@pytest.mark.parametrize("extra", ["lead_id", "transferTarget", "vendorActive"])
def test_it_refuses_an_answer_with_a_field_the_schema_does_not_list(schema, extra):
    # Answers are closed objects: a stray field is an answer outside the schema, which is what
    # lets the fuzz test catch one.
    answer = {"status": 200, "data": {"agentAvailable": False, "reason": "no_agent",
                                      "timestamp": GUIDE_TIMESTAMP,
                                      "requestId": GUIDE_REQUEST_ID}}  # fmt: skip
    ok_schema = {"$ref": "#/components/schemas/PingOk", "components": schema["components"]}
    jsonschema.validate(answer, ok_schema)
    answer["data"][extra] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(answer, ok_schema)


def test_it_answers_the_schema_without_a_database(api, django_assert_num_queries, db):
    with django_assert_num_queries(0):
        assert api.get("/api/schema/").status_code == 200


def test_it_serves_the_docs_page_with_the_guide_and_only_local_assets(api, client):
    response = api.get("/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'spec-url="/api/schema/"' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert not [url for url in assets if "//" in url], "the docs page must not need the internet"
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
    guide = api.get("/api/schema/?format=json").json()["info"]["description"]
    assert guide.startswith("This page is for vendors")
    assert "POST /functions/v1/vendors-ping" in guide
    assert "https://" not in guide  # in our own words, with no host in it
