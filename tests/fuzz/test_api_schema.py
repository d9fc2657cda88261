"""The REST API against its own served OpenAPI document, with a token of every role, the
client accounts' included: no 5xx, every answer as the document says, and no answer with
another tenant's data; then every route that takes an id, given the ids of another tenant's
objects, answers 404."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from appliance.web.hardening import CSP
from tests.fuzz.harness import CrossTenant, Finding, Unhandled, examples, probe
from tests.fuzz.served import AGENCY, CLIENTS, Served

ROLES = (*AGENCY, *CLIENTS)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    app = Served(tmp_path_factory.mktemp("api"))
    yield app
    app.close()


@pytest.fixture(scope="module")
def schema(served: Served) -> schemathesis.BaseSchema:
    token = served.world.tokens["owner"]
    document = requests.get(
        f"{served.base_url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}
    ).json()
    return schemathesis.openapi.from_dict(document)


# Not checked: that every request the document allows is accepted, and every other refused.
# Some rules are beyond a schema (a cursor this call log gave out, a search of at most 12
# words), and the API ignores query parameters it does not know, as HTTP APIs do. The bounds
# a schema can state, it states: these checks found the limits, q and the empty filters it did
# not (test_regression_the_document_states_the_bounds_the_api_keeps).
NOT_CHECKED = [positive_data_acceptance, negative_data_rejection]


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_with_a_token_of_each_role_conforms_and_stays_in_its_tenant(
    served, schema, role
):
    token = served.world.tokens[role]
    auth = {"Authorization": f"Bearer {token}"}
    foreign = served.foreign(role)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(cases)
    @examples(ci=40)
    def fuzz(case: schemathesis.Case) -> None:
        with probe("REST API (schemathesis)", hang=60):
            response = case.call(base_url=served.base_url, headers=auth, timeout=30)
            if response.status_code >= 500:
                raise Unhandled(f"{response.status_code} for {case.method} {case.formatted_path}")
            got = {
                k.lower(): v[0] if isinstance(v, list) else v for k, v in response.headers.items()
            }
            for name, value in HEADERS.items():
                if got.get(name.lower()) != value:
                    raise Finding(f"{case.method} {case.formatted_path} answered without {name}")
            try:
                case.validate_response(response, headers=auth, excluded_checks=NOT_CHECKED)
            except AssertionError as failure:  # schemathesis's own failures
                raise Finding(f"{case.method} {case.formatted_path}: {failure}") from None
            sent = str(case.path_parameters) + str(case.query)
            leaked = [m for m in foreign if m in response.text and m not in sent]
            if leaked:
                raise CrossTenant(
                    f"{role} was shown {leaked} by {case.method} {case.formatted_path}"
                )

    fuzz()


ID_ROUTES = ("/api/v1/calls/{id}", "/api/v1/calls/{id}/recording", "/api/v1/calls/{id}/transcript")


@pytest.mark.parametrize("role", list(CLIENTS))
def test_every_id_taking_route_answers_404_for_another_tenants_objects(served, role):
    own = CLIENTS[role]
    auth = {"Authorization": f"Bearer {served.world.tokens[role]}"}
    theirs = [served.world.calls[t] for t in ("a", "b", "") if t != own]
    for route in ID_ROUTES:
        for call_id in theirs:
            with probe("REST API (other tenants' ids)"):
                response = requests.get(
                    served.base_url + route.format(id=call_id), headers=auth, timeout=30
                )
                if response.status_code != 404:
                    raise CrossTenant(f"{role} got {response.status_code} for {route} of {call_id}")
        mine = requests.get(
            served.base_url + ID_ROUTES[0].format(id=served.world.calls[own]),
            headers=auth,
            timeout=30,
        )
        assert mine.status_code == 200  # the check above can fail: the same route does answer
    for path in ("/api/v1/calls", "/api/v1/leads", "/api/v1/numbers", "/api/v1/sources",
                 "/api/v1/routes", "/api/v1/sites", "/api/v1/endpoints",
                 f"/api/v1/calls?account={served.world.accounts['b' if own == 'a' else 'a']}",
                 "/api/v1/transcripts/search?q=Caller"):  # fmt: skip
        with probe("REST API (other tenants' ids)"):
            response = requests.get(served.base_url + path, headers=auth, timeout=30)
            leaked = [m for m in served.foreign(role) if m in response.text]
            if response.status_code >= 500 or leaked:
                raise CrossTenant(f"{role} got {response.status_code} {leaked} from {path}")


# what the fuzzing found, kept -------------------------------------------------------------
def test_regression_the_document_states_the_bounds_the_api_keeps(served, schema):
    auth = {"Authorization": f"Bearer {served.world.tokens['owner']}"}
    document = requests.get(
        f"{served.base_url}/api/v1/openapi.json", headers=auth, timeout=30
    ).json()
    for path, name, top in (
        ("/api/v1/leads", "limit", 500),
        ("/api/v1/transcripts/search", "limit", 200),
    ):
        (declared,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
        assert (declared["schema"]["minimum"], declared["schema"]["maximum"]) == (1, top)
        for limit, status in ((1, 200), (top, 200), (top + 1, 400), (0, 400)):
            answer = requests.get(
                f"{served.base_url}{path}?q=caller&{name}={limit}", headers=auth, timeout=30
            )
            assert answer.status_code == status, (path, limit, answer.text)
    (q,) = [
        p
        for p in document["paths"]["/api/v1/transcripts/search"]["get"]["parameters"]
        if p["name"] == "q"
    ]
    assert q["required"] and q["schema"]["minLength"] == 1
    answer = requests.get(f"{served.base_url}/api/v1/transcripts/search", headers=auth, timeout=30)
    assert answer.status_code == 400
    (since,) = [
        p for p in document["paths"]["/api/v1/calls"]["get"]["parameters"] if p["name"] == "from"
    ]
    assert {"type": "string", "maxLength": 0} in since["schema"]["anyOf"]
    answer = requests.get(
        f"{served.base_url}/api/v1/calls?from=&to=&disposition=", headers=auth, timeout=30
    )
    assert answer.status_code == 200
