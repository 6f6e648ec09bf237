"""Pipelines over the API: storing one with its code (as a remote CLI does), its versions and definitions."""

from __future__ import annotations

from api.conftest import RunningServer, error_of
from api.projects import gated_project, store_pipeline


def test_a_stored_pipeline_is_listed_with_its_versions_and_definition(server: RunningServer, project) -> None:
    gated_project(project)
    with server.client("operator") as client:
        first = store_pipeline(client, project)
        same = store_pipeline(client, project)  # an unchanged definition is the same version
        project.write("gate.py", "print('changed code, same definition')\n")
        changed_code = store_pipeline(client, project)
        listed = client.get("/pipelines").json()
        versions = client.get("/pipelines/gated/versions").json()
        latest = client.get("/pipelines/gated").json()
        one = client.get("/pipelines/gated/versions/1").json()
        missing = client.get("/pipelines/nope/versions")
        bad = client.post("/pipelines", json={"definition": {"Name": "x"}, "code": ""})
        bad_code = client.post("/pipelines", json={"definition": latest["definition"], "code": "not base64!"})
    assert first["version"] == same["version"] == changed_code["version"] == 1
    assert changed_code["code_snapshot"] != first["code_snapshot"]
    assert [(p["name"], p["latest_version"]) for p in listed] == [("gated", 1)]
    assert [v["version"] for v in versions] == [1] and "definition" not in versions[0]
    assert latest["definition"]["Name"] == "gated" and one["definition"] == latest["definition"]
    assert [s["Name"] for s in latest["definition"]["Steps"]] == ["Gate"]
    assert missing.status_code == 404 and "nope" in error_of(missing)
    assert bad.status_code == 400 and "'Name' and 'Steps'" in error_of(bad)
    assert bad_code.status_code == 400 and "code archive" in error_of(bad_code)
