"""The API's OpenAPI 3.1 document, served at /api/v1/openapi.json. A test checks that it names
exactly the routes the application serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import __version__
from appliance.calls.log import DISPOSITIONS

ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "a filter or cursor that cannot be used; the message names the field",
        401: "no valid token (unknown, revoked or expired)",
        403: "the token's role or scopes do not allow it; the message names the permission",
        404: "no such call, or a call of another account",
        409: "the call is not in progress, or the recording may not be controlled now",
        416: "the range lies outside the recording",
        503: "the recording cannot be opened now",
    }
    return {
        str(s): {
            "description": words[s],
            "content": {"application/json": {"schema": ERROR}},
        }
        for s in statuses
    }


CALL_ID = {
    "name": "call_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}


def _filter(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """A filter of the call log: an empty value is the same as none (the page's form sends
    its empty fields)."""
    parameter = _query(name, description, **schema)
    parameter["schema"] = {"anyOf": [parameter["schema"], {"type": "string", "maxLength": 0}]}
    return parameter


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string", "maxLength": 100},
    }


CALL = {
    "type": "object",
    "required": ["id", "started_at", "dialled", "after_hours", "recorded"],
    "properties": {
        "id": {"type": "string"},
        "account_id": {"type": ["integer", "null"]},
        "started_at": {"type": "string", "format": "date-time"},
        "dialled": {"type": "string"},
        "caller_number": {"type": ["string", "null"]},
        "caller_name": {"type": ["string", "null"]},
        "source": {"type": ["string", "null"]},
        "medium": {"type": ["string", "null"]},
        "campaign": {"type": ["string", "null"]},
        "route": {"type": ["string", "null"]},
        "disposition": {"type": ["string", "null"], "enum": [*DISPOSITIONS, None]},
        "ring_seconds": {"type": ["number", "null"]},
        "talk_seconds": {"type": ["number", "null"]},
        "first_time": {"type": ["boolean", "null"]},
        "after_hours": {"type": "boolean"},
        "recorded": {"type": "boolean"},
        "answered_at": {"type": ["string", "null"], "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "hangup_party": {"type": ["string", "null"]},
        "answered_by": {"type": ["string", "null"]},
        "consent_announced": {"type": "boolean"},
        "recording_opted_out": {"type": "boolean"},
        "consent_prompt": {
            "type": ["string", "null"],
            "description": "the recording notice played to the caller (its sound name)",
        },
        "consent_at": {"type": ["string", "null"], "format": "date-time"},
        "restricted": {
            "type": "boolean",
            "description": "the caller is on the account's restrict list: never recorded, "
            "transcribed, analysed or sent to an ad platform",
        },
        "visit_id": {"type": ["string", "null"]},
        "attribution": {"type": ["string", "null"], "enum": ["held", "after", "ambiguous", None]},
        "score": {
            "type": ["integer", "null"],
            "description": "lead score 0-100: the analysis's (once the call is transcribed "
            "and analysed) plus score_adjustment",
        },
        "tags": {"type": "array", "items": {"type": "string"}},
        "labels": {
            "type": "array",
            "items": {"type": "string"},
            "description": "tags integrators added (AGI script tag, plugins); in one call only",
        },
        "notes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"origin": {"type": "string"}, "text": {"type": "string"}},
            },
            "description": "notes integrators attached, oldest first; in one call only",
        },
        "score_adjustment": {"type": "integer", "description": "-100 to 100, from integrators"},
    },
}
VISIT = {
    "type": ["object", "null"],
    "description": "the website visit that was shown the number dialled",
    "properties": {
        "id": {"type": "string"},
        "site": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "last_seen_at": {"type": "string", "format": "date-time"},
        "landing_page": {"type": "string"},
        "referrer": {"type": ["string", "null"]},
        "source": {"type": "string"},
        "medium": {"type": ["string", "null"]},
        "campaign": {"type": ["string", "null"]},
        "keyword": {"type": ["string", "null"]},
        "click_id_type": {"type": ["string", "null"]},
        "click_id": {"type": ["string", "null"]},
        "pages": {"type": "array", "items": {"type": "object"}},
    },
}
LEAD = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "site": {"type": "string"},
        "form": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        "page": {"type": ["string", "null"]},
        "source": {"type": ["string", "null"]},
        "medium": {"type": ["string", "null"]},
        "campaign": {"type": ["string", "null"]},
        "visit_id": {"type": ["string", "null"]},
    },
}

_SPEAKER = {"type": "integer", "enum": [0, 1], "description": "0 the caller, 1 who answered"}
TRANSCRIPT = {
    "type": "object",
    "properties": {
        "state": {"type": "string", "enum": ["none", "queued", "running", "done", "parked"]},
        "error": {"type": ["string", "null"], "description": "why it was parked"},
        "off": {"type": ["string", "null"]},
        "analysis": {
            "type": ["object", "null"],
            "description": "score 0-100 with its trace (signal, points, why), tags and the "
            "phrases that gave them (hits, with their time), category, spam and why, summary "
            "turns, caller_seconds, answerer_seconds, longest_silence",
            "properties": {
                "score": {"type": "integer"},
                "category": {"type": ["string", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "spam": {"type": "boolean"},
                "trace": {"type": "array", "items": {"type": "object"}},
                "hits": {"type": "array", "items": {"type": "object"}},
            },
        },
        "transcript": {
            "type": ["object", "null"],
            "properties": {
                "model": {"type": "string"},
                "seconds": {"type": "number"},
                "words": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "speaker": _SPEAKER,
                            "start": {"type": "number", "description": "seconds into the call"},
                            "end": {"type": "number"},
                            "confidence": {"type": "number"},
                            "word": {"type": "string"},
                        },
                    },
                },
                "turns": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "speaker": _SPEAKER,
                            "start": {"type": "number"},
                            "end": {"type": "number"},
                            "text": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


def document(with_live_control: bool) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v1/calls": {
            "get": {
                "summary": "Calls, newest first, a page at a time (needs calls:read)",
                "parameters": [
                    _filter("from", "first day, YYYY-MM-DD (UTC)", type="string", format="date"),
                    _filter("to", "last day, YYYY-MM-DD (UTC)", type="string", format="date"),
                    _filter("number", "digits of the dialled or the caller's number"),
                    _filter("source", "marketing source name"),
                    _filter("disposition", "outcome", type="string", enum=list(DISPOSITIONS)),
                    _filter("q", "caller name or number, or route"),
                    _filter("account", "account id", type="string", pattern="^[0-9]+$"),
                    _filter("cursor", "next_cursor of the previous page"),
                    _query("limit", "calls a page", type="integer", minimum=1, maximum=200),
                ],
                "responses": {
                    "200": {
                        "description": "a page of calls",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "calls": {"type": "array", "items": CALL},
                                        "next_cursor": {"type": ["string", "null"]},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/api/v1/calls/{call_id}": {
            "get": {
                "summary": "One call, with its website visit (needs calls:read)",
                "parameters": [CALL_ID],
                "responses": {
                    "200": {
                        "description": "the call",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "allOf": [
                                        CALL,
                                        {"type": "object", "properties": {"visit": VISIT}},
                                    ]
                                }
                            }
                        },
                    },
                    **_errors(401, 403, 404),
                },
            }
        },
        "/api/v1/calls/{call_id}/recording": {
            "get": {
                "summary": "The recording as WAV, seekable with Range (needs recordings:read)",
                "parameters": [
                    CALL_ID,
                    _query("download", "1: as an attachment (anything else: inline)"),
                ],
                "responses": {
                    "200": {
                        "description": "the whole recording",
                        "content": {"audio/wav": {}},
                    },
                    "206": {"description": "the range asked for", "content": {"audio/wav": {}}},
                    **_errors(401, 403, 404, 416, 503),
                },
            }
        },
        "/api/v1/calls/{call_id}/transcript": {
            "get": {
                "summary": "What was said: every word with its speaker and time, and the "
                "dialogue's turns (needs recordings:read; every read is audited)",
                "parameters": [CALL_ID],
                "responses": {
                    "200": {
                        "description": "state: none, queued, running, done or parked; "
                        "transcript: null until done; off: why calls are not transcribed",
                        "content": {"application/json": {"schema": TRANSCRIPT}},
                    },
                    **_errors(401, 403, 404),
                },
            }
        },
        "/api/v1/transcripts/search": {
            "get": {
                "summary": "Turns of transcripts that say every word of q, newest calls first "
                "(needs calls:read and recordings:read; each search is audited, not its words)",
                "parameters": [
                    {
                        **_query("q", "one to 12 words, at most 200 characters"),
                        "required": True,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "pattern": "\\w",
                        },
                    },
                    _query("limit", "1 to 200, default 50", type="integer", minimum=1, maximum=200),
                ],
                "responses": {
                    "200": {
                        "description": "results: call_id, started_at, caller_number, speaker, "
                        "start (seconds into the recording), snippet, matches",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        **{
            f"/api/v1/{kind}": {
                "get": {
                    "summary": f"The {kind} of the token's accounts (needs config:read)",
                    "responses": {
                        "200": {
                            "description": f'{{"{kind}": [...]}}',
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_errors(401, 403),
                    },
                }
            }
            for kind in ("numbers", "sources", "routes", "endpoints", "sites")
        },
        "/api/v1/leads": {
            "get": {
                "summary": "The newest form leads of the token's accounts (needs calls:read)",
                "parameters": [
                    _query("limit", "1 to 500, default 100", type="integer", minimum=1, maximum=500)
                ],
                "responses": {
                    "200": {
                        "description": "leads, newest first",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"leads": {"type": "array", "items": LEAD}},
                                }
                            }
                        },
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors(401)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "The appliance's metrics for Prometheus (needs metrics:read, which "
                "only the agency's owners and admins hold; a signed-in session of one will do)",
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 403),
                },
            }
        },
    }
    if with_live_control:
        paths["/api/v1/calls/{call_id}/recording/{verb}"] = {
            "post": {
                "summary": "Pause, resume or start the recording of a call in progress "
                "(needs recordings:control)",
                "parameters": [
                    CALL_ID,
                    {
                        "name": "verb",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["pause", "resume", "start"]},
                    },
                ],
                "responses": {
                    "200": {"description": "done"},
                    **_errors(401, 403, 404, 409),
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Call-tracking appliance API", "version": __version__},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            },
        },
        "security": [{"token": []}],
        "paths": paths,
    }


DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)


async def serve(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])
