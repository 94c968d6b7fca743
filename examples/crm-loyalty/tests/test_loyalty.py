"""Tests of the module, written with the CRM's testing kit (the ``crm_*`` fixtures).

Each test gets a fresh database with the module enabled (``crm_modules`` in pyproject.toml).
Run them with ``pytest``; ``pytest --crm-db=postgres`` runs them on PostgreSQL (the server's
admin URL in ``CRM_TEST_POSTGRES_URL``). ``pytest --fixtures`` describes every fixture.
"""

import json
import re

import pytest

from crm_loyalty import NAME
from crm_loyalty.events import WELCOME
from crm_loyalty.views import RESOURCE

NOTES = f"/api/{NAME}/customers/{{id}}/notes"


def new_customer(api, name="Lan Nguyen"):
    """Create a customer through the API (the caller owns it); return it as JSON."""
    response = api.post("/api/customers", json={"display_name": name})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_module_is_installed_and_enabled(crm_cli):
    result = crm_cli("modules", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = {m["name"]: m for m in json.loads(result.stdout)}
    assert listed[NAME]["state"] == "installed"
    assert listed[NAME]["errors"] == []


def test_migrations_match_models(crm_instance):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from core.db import Base

    def ours(item, name, kind, reflected, compare_to):
        table = name if kind == "table" else item.table.name
        return table.startswith(f"{NAME}_")

    with crm_instance.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": ours})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == [], "models.py and migrations/ differ: write a new revision"


def test_a_new_customer_gets_a_welcome_note(crm_api):
    customer = new_customer(crm_api)
    notes = crm_api.get(NOTES.format(id=customer["id"])).json()
    assert [n["title"] for n in notes] == [WELCOME]
    assert notes[0]["owner_id"] == customer["owner_id"]


def test_notes_are_written_and_listed_newest_first(crm_api, crm_admin):
    url = NOTES.format(id=new_customer(crm_api)["id"])
    created = crm_api.post(url, json={"title": "Called back", "body": "Wants a quote"})
    assert created.status_code == 201, created.text
    assert created.json()["owner_id"] == crm_admin.id
    listed = crm_api.get(url).json()
    assert [n["title"] for n in listed] == ["Called back", WELCOME]
    assert listed[0]["body"] == "Wants a quote"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({}, "title"),
        ({"title": "Hi", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_refused_naming_the_field(crm_api, body, field):
    url = NOTES.format(id=new_customer(crm_api)["id"])
    response = crm_api.post(url, json=body)
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]
    assert [n["title"] for n in crm_api.get(url).json()] == [WELCOME]


def test_a_user_without_the_permission_is_refused(crm_api, crm_api_for, crm_user_factory):
    url = NOTES.format(id=new_customer(crm_api)["id"])
    analyst = crm_api_for(crm_user_factory(roles=("analyst",)))
    assert analyst.get(url).status_code == 403
    assert analyst.post(url, json={"title": "Hello"}).status_code == 403


def test_a_customer_the_user_may_not_see_answers_404(crm_api, crm_api_for, crm_user_factory):
    others = NOTES.format(id=new_customer(crm_api)["id"])  # the admin's customer
    seller = crm_api_for(crm_user_factory(roles=("sales",)))  # sees only their own
    assert seller.get(others).status_code == 404
    assert seller.post(others, json={"title": "Hello"}).status_code == 404
    assert seller.get(NOTES.format(id=999_999)).status_code == 404
    own = NOTES.format(id=new_customer(seller, "Minh Tran")["id"])
    assert seller.post(own, json={"title": "Hello"}).status_code == 201


def test_the_screens_and_the_customer_panel_show_notes(crm_api, crm_admin, crm_web_for):
    customer = new_customer(crm_api)
    url = NOTES.format(id=customer["id"])
    crm_api.post(url, json={"title": "<script>alert(1)</script>"})
    web = crm_web_for(crm_admin)

    listed = web.get(f"/ui/{RESOURCE}")
    assert listed.status_code == 200
    assert WELCOME in listed.text

    page = web.get(f"/ui/customer/{customer['id']}")
    assert page.status_code == 200
    slot = re.search(rf"/ui/slots/{NAME}\.notes/\d+", page.text)
    assert slot, "the notes panel is missing from the customer page"
    panel = web.get(slot.group(0))
    assert panel.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in panel.text
    assert "<script>alert(1)" not in panel.text


def test_a_note_is_written_and_changed_through_the_form(
    crm_api, crm_api_for, crm_user_factory, crm_web_for
):
    seller = crm_user_factory(roles=("sales",))
    own = new_customer(crm_api_for(seller), "Minh Tran")
    others = new_customer(crm_api)  # the admin's: the seller may not see it
    web = crm_web_for(seller)
    form = {"customer_id": str(own["id"]), "title": "Met at the fair", "body": ""}

    saved = web.post(f"/ui/{RESOURCE}/new", form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    page = saved.headers["location"].split("?")[0]
    assert "Met at the fair" in web.get(page).text

    edit = f"{page}/edit"
    changed = web.post(edit, {**form, "title": "Met again", "version": "1"})
    assert changed.status_code == 200
    assert "Met again" in changed.text
    blank = web.post(edit, {**form, "title": "   ", "version": "2"})
    assert blank.status_code == 422
    assert 'id="error-title"' in blank.text  # the message is shown at the title field

    for url, data in ((f"/ui/{RESOURCE}/new", form), (edit, {**form, "version": "2"})):
        refused = web.post(url, {**data, "customer_id": str(others["id"])})
        assert refused.status_code == 422
        assert "No such record, or you may not see it." in refused.text  # checked by the core
    titles = [n["title"] for n in crm_api.get(NOTES.format(id=own["id"])).json()]
    assert titles == ["Met again", WELCOME]
    assert [n["title"] for n in crm_api.get(NOTES.format(id=others["id"])).json()] == [WELCOME]


def test_the_stats_command_counts_notes(crm_api, crm_cli):
    first = new_customer(crm_api)
    new_customer(crm_api, "Minh Tran")
    crm_api.post(NOTES.format(id=first["id"]), json={"title": "Called back"})
    result = crm_cli(NAME, "stats", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"notes": 3, "customers": 2}


def test_the_checklist_item_passes_once_a_note_exists(crm_api, crm_cli):
    def status():
        result = crm_cli("check", "--module", NAME, "--format", "json")
        assert result.exit_code == 0, result.output
        return {item["id"]: item["status"] for item in json.loads(result.stdout)}

    assert status()[f"{NAME}.W001"] == "open"
    new_customer(crm_api)
    assert status()[f"{NAME}.W001"] == "ok"
