"""The registry's web pages in a real browser: Playwright driving Debian's Chromium.

Chromium comes from Debian (``apt install chromium``; .ci/run installs it), never from
Playwright's own download. Without it, or without the ``playwright`` package, these tests
are skipped, except under CI (``$CI`` set), where they fail. Every page visited is saved as
a screenshot in ``$CONFORM_TEST_ARTIFACTS/registry`` (default ``test-artifacts/registry`` in
the working directory) so a reviewer can look at what the browser showed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stimulus_design import check_package

CHROMIUM = os.environ.get("CONFORM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own network traffic (updates, sync, field trials) is refused on a closed
# network and slows every start; the sandbox needs user namespaces that containers lack.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"The browser tests must run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if importlib.util.find_spec("playwright") is None:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM} (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("CONFORM_TEST_ARTIFACTS") or "test-artifacts") / "registry"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_pages_read_without_javascript(browser, web_registry, shots):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(web_registry.url + "/")
        page.screenshot(path=shots / "catalog.png", full_page=True)
        assert page.get_by_test_id("studies").get_by_text("vision").first.is_visible()

        with page.expect_response(lambda r: r.url.split("?")[0].endswith("/coverage.svg")) as figure:
            page.get_by_test_id("studies").get_by_role("link", name="vision", exact=True).click()
        assert figure.value.status == 200
        page.wait_for_load_state("load")
        assert page.locator("figure img").evaluate("img => img.naturalWidth") > 0
        coverage = page.get_by_test_id("coverage").inner_text()
        assert "collected" in coverage and "allocated" in coverage
        page.screenshot(path=shots / "study.png", full_page=True)

        page.get_by_role("link", name="Published catalog: vision-catalog v1").click()
        assert "passed" in page.get_by_test_id("validation-state").inner_text()
        assert page.get_by_test_id("manifest").locator("tbody tr").count() >= 4
        page.screenshot(path=shots / "catalog-version.png", full_page=True)

        page.goto(web_registry.url + "/datasets/cam-vision/1")
        page.get_by_text("Validation log").click()  # <details> opens without JavaScript
        assert page.locator("pre.log").is_visible()
        page.screenshot(path=shots / "contribution-version.png", full_page=True)
    finally:
        context.close()


def test_a_site_signs_in_requests_a_protocol_and_downloads_it(browser, web_registry, shots,
                                                              tmp_path):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(web_registry.url + "/studies/vision/request")
        page.screenshot(path=shots / "request-signed-out.png", full_page=True)
        page.get_by_role("link", name="Sign in").last.click()
        page.get_by_label("Registry token").fill(web_registry.tokens["ucl"])
        page.get_by_role("button", name="Sign in").click()
        assert page.url.endswith("/studies/vision/request")
        assert "ucl" in page.get_by_test_id("signed-in").inner_text()

        page.get_by_label("New participants").fill("two")
        page.get_by_role("button", name="Request the protocol").click()
        assert "whole number" in page.get_by_test_id("problem").inner_text()
        page.screenshot(path=shots / "request-problem.png", full_page=True)

        page.get_by_label("New participants").fill("2")
        page.get_by_label("Scanning minutes per session").fill("3")
        page.get_by_role("button", name="Request the protocol").click()
        assert "is ready" in page.get_by_test_id("requested").inner_text()
        page.screenshot(path=shots / "request-done.png", full_page=True)

        with page.expect_download() as download:
            page.get_by_test_id("download").click()
        archive = tmp_path / download.value.suggested_filename
        download.value.save_as(archive)
        with zipfile.ZipFile(archive) as unzipped:
            unzipped.extractall(tmp_path / "package")
        assert check_package(tmp_path / "package") == []
    finally:
        context.close()


def test_a_site_follows_its_failed_submission_to_the_reason(browser, web_registry, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        job = web_registry.jobs["oxf-vision"]
        page.goto(f"{web_registry.url}/jobs/{job['id']}")
        assert page.get_by_role("alert").is_visible()  # 401: sign in
        page.screenshot(path=shots / "job-signed-out.png", full_page=True)
        page.get_by_role("alert").get_by_role("link", name="Sign in").click()
        page.get_by_label("Registry token").fill(web_registry.tokens["oxf"])
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_test_id("job-state").inner_text() == "failed"
        assert "events.protocol_mismatch" in page.get_by_test_id("errors").inner_text()
        assert page.get_by_test_id("job-log").inner_text().strip()
        page.screenshot(path=shots / "job-failed.png", full_page=True)
    finally:
        context.close()
