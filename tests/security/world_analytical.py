"""The analytical module's part of the access-matrix world (see ``tests/security/world.py``).

Every snapshot is computed (``crm analytics refresh``) so the analytics pages show customers,
each page narrowed by the viewer's record rules. Segments and campaigns have no record rule:
whoever may read them sees all of them (``EVERYONE``), so they carry no marker; the customers
they hold (``owner``'s, with the marker) are what the pages must narrow. They are made through
the module's REST API by the administrator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.security.world import EVERYONE, World

API = "/api/analytical"
PAGES = "/analytical"
#: Customers who bought in the last month: ``owner``'s customer, whose order is new.
DEFINITION = {"last_purchase_within_days": 30}


def _json(response: Any, expected: int = 201) -> dict[str, Any]:
    """The JSON body of ``response``, which must have the ``expected`` status."""
    assert response.status_code == expected, (response.request.url, response.text)
    return response.json()


def _refresh(world: World) -> None:
    """Every analytics snapshot, as of today."""
    from plugins.analytical.refresh import run_steps

    for _ in run_steps(world.crm, dt.datetime.now(dt.UTC).date()):
        pass


def build(world: World) -> None:
    """Snapshots, a segment, a draft and a frozen campaign, and the routes' inputs."""
    _refresh(world)
    admin = world.api("admin")
    segment = _json(
        admin.post(
            f"{API}/segments",
            json={
                "name": "Matrix recent buyers",
                "description": "Bought this month",
                "definition": DEFINITION,
            },
        )
    )
    world.param("segment_id", segment["id"], EVERYONE)
    campaigns = []
    for name in ("Matrix draft campaign", "Matrix frozen campaign"):
        campaign = _json(
            admin.post(
                f"{API}/campaigns",
                json={"name": name, "segment_id": segment["id"], "control_percent": 0},
            )
        )
        campaigns.append(campaign)
        world.param("campaign_id", campaign["id"], EVERYONE)
        world.record("analytical.campaign", campaign["id"], EVERYONE)
    frozen = campaigns[1]
    _json(
        admin.post(f"{API}/campaigns/{frozen['id']}/freeze", json={"version": frozen["version"]}),
        200,
    )
    _bodies(world, segment, campaigns[0])


def _bodies(world: World, segment: dict[str, Any], draft: dict[str, Any]) -> None:
    """Valid bodies for the module's write routes (refused callers send the same)."""
    template_id = world.refs("template_id", "/api/operational/mail-templates/")[0].value
    api = {
        ("POST", "/segments"): {"name": "Matrix segment 2", "definition": DEFINITION},
        ("POST", "/segments/preview"): {"definition": DEFINITION},
        ("PATCH", "/segments/{segment_id}"): {
            "version": segment["version"],
            "description": "Changed",
        },
        ("POST", "/campaigns"): {"name": "Matrix campaign 2", "segment_id": segment["id"]},
        ("POST", "/campaigns/{campaign_id}/freeze"): {"version": draft["version"]},
        ("POST", "/campaigns/{campaign_id}/send"): {
            "version": draft["version"],
            "template_id": template_id,
        },
    }
    for (method, path), payload in api.items():
        world.body(method, API + path, payload)
    pages = {
        ("POST", "/segments"): {"name": "Matrix segment 3", "last_purchase_within_days": "30"},
        ("POST", "/segments/{segment_id:int}"): {
            "name": segment["name"],
            "last_purchase_within_days": "60",
            "version": str(segment["version"]),
        },
        ("POST", "/segments/{segment_id:int}/delete"): {"version": str(segment["version"])},
        ("POST", "/campaigns"): {"name": "Matrix campaign 3", "segment_id": str(segment["id"])},
        ("POST", "/campaigns/{campaign_id:int}/freeze"): {"version": str(draft["version"])},
        ("POST", "/campaigns/{campaign_id:int}/send"): {
            "template_id": str(template_id),
            "version": str(draft["version"]),
        },
    }
    for (method, path), payload in pages.items():
        world.body(method, PAGES + path, payload)
