"""The registry's web pages over real HTTP (no browser): what they show, who may see it, forms.

The registry is :func:`web_registry` (conftest.py): a study with one published contribution
and one refused. The browser tests (test_browser.py) drive the same pages in Chromium.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from conform_registry._web import COOKIE, form_token
from stimulus_design import check_package


def text_of(html: str) -> str:
    """The page's visible text, tags stripped and spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def anonymous(web_registry):
    with httpx.Client(base_url=web_registry.url, timeout=60) as client:
        yield client


@contextlib.contextmanager
def signed_in(web_registry, site: str) -> Iterator[httpx.Client]:
    """A client whose cookie is that of ``site`` after signing in through the form."""
    with httpx.Client(base_url=web_registry.url, timeout=120, follow_redirects=True) as client:
        answer = client.post("/login", data={"token": web_registry.tokens[site], "next": "/"})
        assert answer.status_code == 200 and COOKIE in client.cookies
        yield client
    return client


def test_the_catalog_lists_studies_and_published_datasets_without_signing_in(anonymous):
    page = anonymous.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = text_of(page.text)
    assert "vision" in text and "vision-catalog v1" in text and "cam-vision" in text
    assert "oxf-vision" not in text  # a draft only: its site and curators see it
    assert "Sign in" in text


def test_a_site_sees_its_own_draft_and_its_failed_validation(web_registry):
    with signed_in(web_registry, "oxf") as client:
        text = text_of(client.get("/").text)
        assert "oxf-vision" in text and "failed" in text and "oxf (contributor)" in text
        job = web_registry.jobs["oxf-vision"]
        page = text_of(client.get("/datasets/oxf-vision").text)
        assert "Validation jobs" in page and str(job["id"]) in page


def test_the_study_page_shows_coverage_as_the_api_computes_it(anonymous, web_registry):
    page = anonymous.get("/studies/vision")
    assert page.status_code == 200
    text = text_of(page.text)
    coverage = web_registry.service.study_coverage(None, "vision")
    assert f"collected {coverage['collected']['n_images']} 2 {coverage['collected']['radius']:.3f}" \
        in text
    assert "Request a protocol" in text and "vision-protocol-1" in text
    figure = anonymous.get("/studies/vision/coverage.svg")
    assert figure.status_code == 200 and figure.headers["content-type"] == "image/svg+xml"
    assert figure.content.lstrip().startswith(b"<?xml") and b"<svg" in figure.content
    assert anonymous.get("/studies/vision/coverage.svg").content == figure.content


def test_a_version_page_has_its_manifest_and_validation_report(anonymous, web_registry):
    version = web_registry.service.get_version(None, "cam-vision", 1)
    page = anonymous.get("/datasets/cam-vision/1")
    assert page.status_code == 200
    text = text_of(page.text)
    assert version["manifest_sha256"] in text and "passed" in text and "0 errors" in text
    for entry in version["files"]:
        assert entry["path"] in text
    link = re.search(r'href="(/api/v1/datasets/cam-vision/versions/1/files/[^"]+)"', page.text)
    assert link is not None and anonymous.get(unescape(link[1])).status_code == 200


def test_the_zip_download_holds_every_file_of_the_manifest_byte_for_byte(anonymous, web_registry):
    version = web_registry.service.get_version(None, "cam-vision", 1)
    answer = anonymous.get("/datasets/cam-vision/1/archive.zip")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert 'filename="cam-vision-v1.zip"' in answer.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert archive.testzip() is None
        got = {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()}
    assert got == {f["path"]: f["sha256"] for f in version["files"]}
    assert anonymous.get("/datasets/cam-vision/1/archive.zip").content == answer.content


def test_a_job_page_needs_its_site_and_shows_the_reason_of_a_failure(anonymous, web_registry):
    job = web_registry.jobs["oxf-vision"]
    refused = anonymous.get(f"/jobs/{job['id']}")
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/html")
    assert "Sign in" in text_of(refused.text) and "/login?next=" in refused.text
    with signed_in(web_registry, "cam") as other:
        assert other.get(f"/jobs/{job['id']}").status_code == 404  # not even its existence
    with signed_in(web_registry, "oxf") as client:
        page = client.get(f"/jobs/{job['id']}")
        text = text_of(page.text)
        assert page.status_code == 200 and "failed" in text
        assert "events.protocol_mismatch" in text and job["report"]["errors"][0]["fix"] in text
        assert "Run it again" in text
        assert 'http-equiv="refresh"' not in page.text  # it ended: no reloading


def test_signing_in_refuses_a_wrong_token_and_never_redirects_off_site(anonymous, web_registry):
    wrong = anonymous.post("/login", data={"token": "cfr_nope", "next": "/"})
    assert wrong.status_code == 401 and COOKIE not in anonymous.cookies
    assert "token" in text_of(wrong.text).lower()
    good = anonymous.post("/login", data={"token": web_registry.tokens["cam"],
                                          "next": "//evil.example/"}, follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/"
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    out = anonymous.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and COOKIE not in anonymous.cookies


def test_a_protocol_request_through_the_form_gives_a_package_the_design_check_accepts(
        web_registry, tmp_path):
    with signed_in(web_registry, "ucl") as client:
        form = client.get("/studies/vision/request")
        token = re.search(r'name="form" value="([0-9a-f]+)"', form.text)
        assert token is not None and token[1] == form_token(web_registry.tokens["ucl"])
        fields = {"participants": "2", "session_minutes": "3", "form": token[1]}
        answer = client.post("/studies/vision/request", data=fields, follow_redirects=False)
        assert answer.status_code == 303, text_of(answer.text)
        where = answer.headers["location"]
        assert re.fullmatch(r"/datasets/vision-protocol-\d+/1\?request=\d+", where)
        page = client.get(where)
        assert "is ready" in text_of(page.text)
        archive = client.get(where.split("?")[0] + "/archive.zip")
    folder = tmp_path / "package"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as unzipped:
        unzipped.extractall(folder)
    assert check_package(folder) == []


@pytest.mark.parametrize(("fields", "status", "says"), [
    ({"participants": "four", "session_minutes": "60"}, 422, "Participants must be a whole number"),
    ({"participants": "0", "session_minutes": "60"}, 422, "participants=0"),
    ({"participants": "2", "session_minutes": "-5"}, 422, "session_minutes=-5.0"),
])
def test_a_bad_request_form_is_shown_again_with_the_problem(web_registry, fields, status, says):
    with signed_in(web_registry, "ucl") as client:
        token = form_token(web_registry.tokens["ucl"])
        answer = client.post("/studies/vision/request", data={**fields, "form": token})
        assert answer.status_code == status and says in text_of(answer.text)
        assert f'value="{fields["participants"]}"' in answer.text  # what was typed is kept


def test_forms_refuse_a_post_without_sign_in_or_from_another_page(anonymous, web_registry):
    fields = {"participants": "2", "session_minutes": "3", "form": "x"}
    assert anonymous.post("/studies/vision/request", data=fields).status_code == 401
    with signed_in(web_registry, "ucl") as client:
        forged = client.post("/studies/vision/request", data=fields)
        assert forged.status_code == 403 and "Reload the page" in text_of(forged.text)


def test_unknown_pages_are_html_and_unknown_api_routes_stay_json(anonymous):
    page = anonymous.get("/studies/nope")
    assert page.status_code == 404 and "nope" in text_of(page.text)
    assert anonymous.get("/no/such/page").headers["content-type"].startswith("text/html")
    api = anonymous.get("/api/v1/no/such/route")
    assert api.status_code == 404 and api.json()["error"]["code"] == "route.not_found"
    assert anonymous.get("/static/registry.css").status_code == 200


def test_a_failed_job_is_run_again_from_its_page(web_registry):
    job = web_registry.jobs["oxf-vision"]
    with signed_in(web_registry, "oxf") as client:
        forged = client.post(f"/jobs/{job['id']}/retry", data={"form": "x"})
        assert forged.status_code == 403
        token = form_token(web_registry.tokens["oxf"])
        answer = client.post(f"/jobs/{job['id']}/retry", data={"form": token},
                             follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == f"/jobs/{job['id']}"
        deadline = time.monotonic() + 60  # the server's runner polls every 0.1 s
        while time.monotonic() < deadline:
            page = client.get(f"/jobs/{job['id']}")
            if 'http-equiv="refresh"' not in page.text:  # the page reloads while it runs
                break
            time.sleep(0.2)
        text = text_of(page.text)
        assert "failed" in text and "retry requested by site 'oxf'" in text


def test_an_error_page_still_says_why_when_the_database_fails(monkeypatch):
    from fastapi.testclient import TestClient

    from conform_registry._api import create_app
    from conform_registry._config import RegistryConfig

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(RegistryConfig(data_dir=folder), workers=0)

        def broken(*args, **kwargs):
            raise RuntimeError("database <gone>")

        monkeypatch.setattr(app.state.service, "list_studies", broken)
        monkeypatch.setattr(app.state.service, "authenticate", broken)
        with TestClient(app, raise_server_exceptions=False) as client:
            client.cookies.set(COOKIE, "cfr_whatever")
            page = client.get("/")
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "The registry failed" in page.text and "send the server log" in page.text
