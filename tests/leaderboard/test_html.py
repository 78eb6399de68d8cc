"""The leaderboard page: rendered content, and its behaviour in a real headless Chromium.

The browser test drives Debian's ``chromium`` (``make chromium-check``; `.ci/run` installs it)
through Playwright's Python package (``executable_path``: no browser download). Without a
chromium it is skipped, except under CI where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from empo_gym import leaderboard as lb
from empo_gym.agents.registry import make_agent
from empo_gym.harness import evaluate
from empo_gym.leaderboard.html import render_html, write_html
from empo_gym.run_metrics import append_metrics

#: Chromium's headless flags for a closed network (no background fetches that would be refused).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _measured(agent: str, episodes: int = 3) -> dict:
    result = evaluate(make_agent(agent, "webshop"), "webshop", episodes=episodes, seed=0)
    return lb.entry_from_result(result, agent=make_agent(agent, "webshop"))


@pytest.fixture(scope="module")
def entries(tmp_path_factory) -> list[dict]:
    """Two real WebShop runs, a trained row with a learning curve, an OOD row, the paper's."""
    run_dir = tmp_path_factory.mktemp("run")
    for i, success in enumerate([0.0, 0.25, 0.5, 1.0]):
        append_metrics(
            run_dir / "metrics.jsonl", {"iteration": i, "success": success, "return": success}
        )
    oracle, rnd = _measured("oracle"), _measured("random")
    trained = _measured("random")
    trained["agent"], trained["model"] = "empo", "smollm2-135m-instruct<&>"
    trained["config"]["agent"] = {"training": {"metrics": str(run_dir / "metrics.jsonl")}}
    ood = _measured("random")
    ood.update(env="ood", task="bio1-bio2", agent="empo")
    ood["config"].update(
        per_trial=[{"mean_score": s} for s in (-10.0, 5.0, 30.0)],
        paper_reference={"grpo": -6.2, "empo2": 32.3},
    )
    for e in (trained, ood):
        lb.validate_entry(e)
    return [rnd, oracle, trained, ood, *lb.reported_entries()]


def test_page_groups_tables_and_marks_reported_rows(entries) -> None:
    page = render_html(entries)
    headings = re.findall(r"<h2>([^<]*)</h2>", page)
    assert "webshop (all tasks)" in headings and "ood / bio1-bio2" in headings
    assert "scienceworld (all tasks)" in headings
    assert page.count('class="entry reported"') == 14
    assert page.count('class="entry measured"') == 4
    assert page.count('<tr class="details" hidden>') == 4  # only measured rows expand
    assert "4 measured runs, 14 reported rows" in page
    assert "smollm2-135m-instruct&lt;&amp;&gt;" in page and "instruct<&>" not in page
    # self-contained: no stylesheet, script or image fetched from anywhere
    assert not re.search(r"<(link|img|iframe)\b|<script[^>]+src=|url\(", page)


def test_measured_rows_carry_provenance_and_curves(entries) -> None:
    page = render_html(entries)
    prov = entries[0]["provenance"]
    for text in ("versions", "commit", "seeds", "0..2 (3)", "success rule", "webshop:reward==1"):
        assert text in page, text
    assert f"{prov['wall_time_s']:.1f} s" in page
    assert "data: noun_method" in page  # what the env said about its data
    assert page.count("learning curve</figcaption>") == 1
    assert page.count("OOD trials") == 1 and "paper grpo (best of 10)" in page
    assert page.count("<svg") == 2


def test_write_html_creates_the_directory(entries, tmp_path) -> None:
    path = write_html(entries[:1], tmp_path / "a" / "b")
    assert path == tmp_path / "a" / "b" / "index.html" and path.read_text().endswith("</html>\n")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_page_in_headless_chromium_sorts_filters_expands(entries, tmp_path) -> None:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must install it: .ci/run)")
        pytest.skip("chromium not installed: apt-get install -y chromium (make chromium-check)")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    page_file = write_html(entries, tmp_path / "page")
    errors: list[str] = []
    fetched: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:

            def route(r) -> None:  # offline: anything but the file itself is refused
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    fetched.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(Path(page_file).as_uri())
            page.wait_for_load_state("load")

            table = page.locator('section[data-env="webshop"] table.board')
            agents = table.locator("tbody.entry")

            def column(col: int) -> list[str]:
                return agents.evaluate_all(
                    f"bs => bs.map(b => b.rows[0].cells[{col + 1}].getAttribute('data-v'))"
                )

            before = column(0)
            # measured first (best score first, then by name), then the paper's rows
            assert before == ["oracle", "empo", "random", "empo", "gigpo", "grpo"]
            table.locator("th", has_text="agent").click()
            after = column(0)
            assert after == sorted(before) and after != before
            table.locator("th", has_text="score").first.click()  # ascending by score
            scores = [float(v) for v in column(4)]
            assert scores == sorted(scores) and len(scores) == 6
            table.locator("th", has_text="score").first.click()
            assert [float(v) for v in column(4)] == sorted(scores, reverse=True)

            page.select_option("#filter-agent", "oracle")
            visible = page.locator("tbody.entry:visible")
            assert visible.count() == 1 and agents.filter(visible=False).count() == 5
            assert page.locator('section[data-task="bio1-bio2"] .empty').is_visible()
            page.select_option("#filter-agent", "")
            page.uncheck("#filter-reported")
            assert page.locator("tbody.reported:visible").count() == 0
            assert visible.count() == 4

            trained = page.locator('section[data-env="webshop"] tbody.measured[data-agent="empo"]')
            assert not trained.locator("tr.details").is_visible()
            trained.locator("button.toggle").click()
            details = trained.locator("tr.details")
            assert details.is_visible() and "success rule" in details.inner_text()
            assert details.locator("svg polyline").count() == 2  # success and return
            ood = page.locator('section[data-env="ood"] tbody.measured')
            ood.locator("button.toggle").click()
            assert ood.locator("tr.details svg polyline").count() == 1  # score per trial
            assert ood.locator("tr.details svg line.ref").count() == 2  # paper figures

            shot = page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
            assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
        finally:
            context.close()
    assert errors == [] and fetched == []
