"""Session report: summary in words, figures, HTML, and rendering in a real browser.

The unit tests use a hand-built session with known truth (counts per set and leg,
which reps lower too fast). The browser test opens the written HTML in headless
Chromium, checks every figure decoded (natural size > 0) and that the screenshot
has drawn pixels, and reads the summary text back from the DOM.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import json
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legrep.cli import main
from legrep.diagnostics import Diagnostics
from legrep.model import Leg, Rep, SessionResult, SetSummary
from legrep.report import (
    FIGURE_NAMES,
    build_figures,
    render_html,
    summarize_session,
    uneven_message,
    write_report,
)
from legrep.settings import Settings

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- a session with known truth


def make_session(
    counts: tuple[tuple[int, int], ...] = ((10, 10), (10, 9)),
    fast_down: frozenset[tuple[Leg, int, int]] = frozenset({(Leg.RIGHT, 2, 3)}),
    rate_hz: float = 50.0,
    rest_s: float = 20.0,
    legs: tuple[Leg, ...] = (Leg.LEFT, Leg.RIGHT),
) -> SessionResult:
    """A session built by hand: per set ``(left, right)`` counts, legs one after the other.

    Each rep rises for 1.2 s, holds 0.5 s, lowers in 1.6 s (0.6 s for ``fast_down`` reps,
    which carry the ``fast_down`` flag); peaks vary between 67 and 73 deg. The traces are the
    matching piecewise-linear hip angles.
    """
    t = 2.0
    reps: list[Rep] = []
    sets: list[SetSummary] = []
    for set_no, per_leg in enumerate(counts, start=1):
        set_start = t
        for leg, n in zip((Leg.LEFT, Leg.RIGHT), per_leg):
            if leg not in legs:
                continue
            for k in range(1, n + 1):
                up, hold = 1.2, 0.5
                down = 0.6 if (leg, set_no, k) in fast_down else 1.6
                peak = 70.0 + 3.0 * float(np.sin(k + set_no))
                end = t + up + hold + down
                flags = ("fast_down",) if down < 1.0 else ()
                reps.append(Rep(leg, t, t + up + hold / 2, end, 0.0, peak, peak, up, hold, down, end + 0.3, flags, set_no, k))
                t = end + 0.8
        left_n = per_leg[0] if Leg.LEFT in legs else 0
        right_n = per_leg[1] if Leg.RIGHT in legs else 0
        sets.append(SetSummary(set_no, set_start, t - 0.8, left_n, right_n, len(legs) == 2 and left_n != right_n))
        t += rest_s
    time_s = np.arange(0.0, t, 1.0 / rate_hz)
    traces = {}
    for leg in legs:
        angle = np.zeros_like(time_s)
        for r in (r for r in reps if r.leg is leg):
            top0, top1 = r.start_s + r.up_s, r.start_s + r.up_s + r.hold_s
            angle = np.where((time_s >= r.start_s) & (time_s < top0), r.peak_deg * (time_s - r.start_s) / r.up_s, angle)
            angle = np.where((time_s >= top0) & (time_s < top1), r.peak_deg, angle)
            angle = np.where((time_s >= top1) & (time_s < r.end_s), r.peak_deg * (1 - (time_s - top1) / r.down_s), angle)
        traces[leg] = (time_s, angle)
    return SessionResult(tuple(reps), tuple(sets), legs, any(s.uneven for s in sets), Diagnostics(), traces)


class _Page(HTMLParser):
    """Collects text per element id and the inline images of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.meta_viewport = False
        self._stack: list[str | None] = []
        self.text: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag in ("link", "script") or (tag == "a" and a.get("href")):
            self.links.append(tag)
        if tag == "meta" and a.get("name") == "viewport":
            self.meta_viewport = True
        if tag not in ("img", "meta", "br", "link"):
            self._stack.append(a.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("img", "meta", "br", "link") and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._stack:
            if element_id:
                self.text[element_id] = self.text.get(element_id, "") + data


def _table_rows(text: str, table_id: str) -> list[list[str]]:
    """Body rows of one table of the page, as cell texts."""
    match = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', text, re.S)
    assert match, f"table {table_id} missing"
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(1), re.S)]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --------------------------------------------------------------------------- summary


def test_uneven_message_names_the_set_and_the_short_side() -> None:
    assert uneven_message(SetSummary(2, 0.0, 1.0, 10, 9, True)) == (
        "Set 2: 10 left, 9 right — one more rep on the right needed"
    )
    assert uneven_message(SetSummary(1, 0.0, 1.0, 7, 10, True)) == (
        "Set 1: 7 left, 10 right — three more reps on the left needed"
    )
    assert uneven_message(SetSummary(3, 0.0, 1.0, 8, 8, False)) is None


def test_summary_counts_averages_and_uneven_sets_match_truth() -> None:
    result = make_session(counts=((10, 10), (10, 9), (8, 10)))
    summary = summarize_session(result)
    assert summary.stats_of(Leg.LEFT).reps == 28
    assert summary.stats_of(Leg.RIGHT).reps == 29
    assert summary.uneven_messages == (
        "Set 2: 10 left, 9 right — one more rep on the right needed",
        "Set 3: 8 left, 10 right — two more reps on the left needed",
    )
    left = [r for r in result.reps if r.leg is Leg.LEFT]
    right = [r for r in result.reps if r.leg is Leg.RIGHT]
    diffs = {name: value for name, value, _unit in summary.differences}
    expected_peak = np.mean([r.peak_deg for r in left]) - np.mean([r.peak_deg for r in right])
    assert diffs["mean peak"] == pytest.approx(expected_peak, abs=1e-9)
    # One fast lowering on the right: mean down differs by exactly (1.6 - 0.6) / 29.
    assert diffs["mean down"] == pytest.approx(1.0 / 29, abs=1e-9)
    assert dict(summary.stats_of(Leg.RIGHT).flags) == {"fast_down": 1}
    assert summary.headline == "28 left, 29 right reps in 3 sets; uneven; 1 of 57 reps lowered too fast"


def test_one_leg_session_has_no_uneven_sets_or_differences() -> None:
    result = make_session(counts=((6, 0),), legs=(Leg.LEFT,), fast_down=frozenset())
    summary = summarize_session(result)
    assert summary.uneven_messages == ()
    assert summary.differences == ()
    assert summary.headline == "6 left reps in 1 set; no form flags"
    page = render_html(result, Settings(), figures_png={}, phone_png={})  # (the text only: no figures drawn)
    assert "left − right" not in page


# --------------------------------------------------------------------------- figures


FIGURES_SETTINGS = Settings(min_down_s=1.2, target_rom_deg=65.0)
"""The figures' thresholds for :func:`drawn`: not the defaults (1.6 s, 70 deg), so that a threshold
drawn from the defaults instead of the settings given shows."""


@pytest.fixture(scope="module")
def drawn() -> tuple[SessionResult, dict[str, Any]]:
    """The hand-built session with two fast lowerings (one per leg) and its figures, drawn once for
    the module's read-only figure tests (drawing them is most of each such test's time)."""
    result = make_session(fast_down=frozenset({(Leg.RIGHT, 2, 3), (Leg.LEFT, 1, 5)}))
    return result, build_figures(result, FIGURES_SETTINGS)


def test_figures_shade_every_rep_and_mark_every_flag(drawn: tuple[SessionResult, dict[str, Any]]) -> None:
    result, figures = drawn
    assert tuple(figures) == FIGURE_NAMES
    gids = [a.get_gid() for a in figures["angle"].findobj() if a.get_gid()]
    shaded = sorted(g for g in gids if g.startswith("rep:"))
    expected = sorted(f"rep:{r.leg.value}:{r.set}:{r.rep}" for r in result.reps)
    assert shaded == expected and len(shaded) == 39
    flagged = sorted(g for g in gids if g.startswith("flag:"))
    assert flagged == ["flag:left:1:5:fast_down", "flag:right:2:3:fast_down"]
    # Set separators: one dashed vertical line between the two sets, on each leg's axes.
    for ax in figures["angle"].axes:
        vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(vlines) == 1
        (x0, x1) = vlines[0].get_xdata()
        assert result.sets[0].end_s < x0 == x1 < result.sets[1].start_s


def test_tempo_and_range_figures_draw_one_bar_per_rep_and_the_thresholds(drawn: tuple[SessionResult, dict[str, Any]]) -> None:
    result, figures = drawn
    (ax_tempo,) = figures["tempo"].axes
    # up, hold and down stacked: three bars per rep.
    assert len(ax_tempo.patches) == 3 * len(result.reps)
    # The "lower slowly" tick sits min_down_s above the bottom of each down segment.
    ticks = [c for c in ax_tempo.collections if c.get_segments()]
    tops = sorted(seg[0][1] for c in ticks for seg in c.get_segments())
    assert tops == pytest.approx(sorted([r.up_s + r.hold_s + 1.2 for r in result.reps]))
    ax_peak, ax_rom = figures["range"].axes
    assert len(ax_peak.patches) == len(result.reps)
    heights = sorted(p.get_height() for p in ax_rom.patches if p.get_width() < 1)
    assert heights == pytest.approx(sorted(r.rom_deg for r in result.reps))
    target_lines = [ln for ln in ax_rom.get_lines() if set(ln.get_ydata()) == {65.0}]
    assert len(target_lines) == 1


# --------------------------------------------------------------------------- HTML


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The hand-built session's report with its PNG files, written once for the module (the
    HTML test reads the file, the browser test renders it): a report costs a second of drawing."""
    out = tmp_path_factory.mktemp("report")
    return write_report(make_session(), out / "report.html", Settings(target_rom_deg=60.0), png_dir=out / "png",
                        exercise="straight leg raise (hand-built test session)", started_at="2026-05-01T18:30:00")  # fmt: skip


def test_html_is_self_contained_and_states_the_summary(written: dict[str, Path]) -> None:
    text = written["html"].read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert page.meta_viewport
    assert page.links == [], "report must not load anything from outside"
    assert "http://" not in text and "https://" not in text
    assert len(page.images) == len(FIGURE_NAMES)
    for src, name in zip(page.images, FIGURE_NAMES):
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png == written[name].read_bytes() and written[name].parent.name == "png"
        width, height = _png_size(png)
        assert width >= 800 and height >= 300
    assert "max-width: 100%" in text
    assert page.text["uneven"].strip() == "Set 2: 10 left, 9 right — one more rep on the right needed"
    rows = _table_rows(text, "sets")
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [("Set 1", "10", "10", "even"), ("Set 2", "10", "9", "uneven")]
    averages = {r[0]: r[1:] for r in _table_rows(text, "averages")}
    assert averages["reps"] == ["20", "19", "+1"]
    assert averages["flag: fast_down"] == ["0", "1", "-1"]
    assert "straight leg raise" in text


def test_cli_report_rejects_bad_arguments_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected" in err[0]
    assert main(["report", "--left", str(tmp_path), "--no-history"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"legrep report: error: {tmp_path}: an IMU CSV file expected, got a directory"]
    assert main(["report", str(tmp_path / "nope"), "--no-history"]) == 2
    assert "got no such file" in capsys.readouterr().err
    assert main(["report", "--left", str(tmp_path / "l.csv"), "--set", "min_down_s=fast", "--no-history"]) == 2
    assert "min_down_s: a number expected, got 'fast'" in capsys.readouterr().err


# --------------------------------------------------------------------------- end to end (simulator + pipeline)


def simulated_csvs(directory: Path, seed: int = 11) -> tuple[Path, Path, object]:
    """Simulate two sets (6 left / 5 right, then 5 / 5) and write the generic IMU CSVs."""
    scenarios = pytest.importorskip("legrep_sim.scenarios", reason="legrep_sim.scenarios (simulator) not built yet")
    pytest.importorskip("legrep.pipeline", reason="legrep.pipeline not built yet")
    pytest.importorskip("legrep.imu_csv", reason="legrep.imu_csv not built yet")
    sets = (
        scenarios.SetSpec(reps_left=6, reps_right=5, order="left_then_right"),
        scenarios.SetSpec(reps_left=5, reps_right=5, order="alternating"),
    )
    session = scenarios.simulate(scenarios.SessionSpec(sets=sets, rate_hz=100.0, errors="typical"), seed=seed)
    session.write_csv(directory)
    return directory / "left.csv", directory / "right.csv", session


def test_cli_report_on_a_simulated_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    left, right, session = simulated_csvs(tmp_path)
    out = tmp_path / "report.html"
    db = tmp_path / "h.db"
    args = ["report", "--left", str(left), "--right", str(right), "--out", str(out), "--db", str(db),
            "--set", "target_rom_deg=70"]  # fmt: skip
    assert main(args) == 0
    stdout = capsys.readouterr().out
    from legrep.history import list_sessions

    (stored,) = list_sessions(db)
    assert json.loads(stored.settings_json or "{}")["target_rom_deg"] == 70.0
    assert "target_rom_deg</td><td>70" in out.read_text(encoding="utf-8")
    page = _Page()
    page.feed(out.read_text(encoding="utf-8"))
    truth_left = sum(s.left_reps for s in session.sets)
    truth_right = sum(s.right_reps for s in session.sets)
    assert page.text["headline"].startswith(f"{truth_left} left, {truth_right} right reps")
    for s in session.sets:
        if s.uneven:
            assert f"Set {s.set}: {s.left_reps} left, {s.right_reps} right" in page.text["uneven"]
    assert "stored as session 1" in stdout
    assert any(s.uneven for s in session.sets)  # the scenario really has an uneven set to name
    text = out.read_text(encoding="utf-8")
    assert len(re.findall(r"<p>Set \d+: ", text)) == sum(s.uneven for s in session.sets)
    assert text.count("data:image/png;base64,") == 2 * len(FIGURE_NAMES)  # desktop and phone figures
    # The angle figure shades exactly the true number of reps, per leg.
    from legrep.imu_csv import read_imu_csv
    from legrep.offline import analyze_arrays

    result = analyze_arrays(left=read_imu_csv(left), right=read_imu_csv(right))
    gids = [a.get_gid() for a in build_figures(result)["angle"].findobj() if a.get_gid()]
    for leg, truth in (("left", truth_left), ("right", truth_right)):
        assert sum(g.startswith(f"rep:{leg}:") for g in gids) == truth


# --------------------------------------------------------------------------- real browser


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    # .ci/run installs it (apt-get install chromium); a test never installs packages itself
    pytest.skip("headless Chromium missing (install the Debian package `chromium`, as .ci/run does)")


def _chromium_run(browser: str, tmp_path: Path, extra: list[str], url: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    args = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={profile}", *extra, url,
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def _read_png_rgb(path: Path) -> np.ndarray:
    """Decode a screenshot to (H, W, 3) uint8 with Pillow (a dependency of matplotlib)."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_report_renders_in_headless_chromium(tmp_path: Path, written: dict[str, Path]) -> None:
    """One headless Chromium (tests/cdp.py): at a phone's width every figure decodes, is scaled to
    the width and the page does not scroll sideways; at a desktop width the figures drew pixels."""
    import asyncio

    from cdp import Browser

    _chromium()
    html_path = written["html"]
    probe = ("JSON.stringify([[...document.images].map(i=>[i.complete,i.naturalWidth,i.naturalHeight,"
             "Math.round(i.getBoundingClientRect().width)]), document.documentElement.clientWidth,"
             "document.documentElement.scrollWidth, document.body.innerText])")  # fmt: skip
    loaded = "Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })))"
    shot = tmp_path / "shot.png"

    async def visit() -> list[Any]:
        async with Browser(390, 844) as browser:
            page = await browser.page()
            await page.goto(html_path.as_uri())
            await page.eval(loaded)
            found = json.loads(await page.eval(probe))
            # the desktop width: a screenshot must have drawn pixels (not a blank page)
            await page.send("Emulation.setDeviceMetricsOverride", width=1000, height=1500, deviceScaleFactor=1, mobile=False)
            await page.eval(loaded)
            await page.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            await page.screenshot(shot)
            return found  # type: ignore[no-any-return]

    images, viewport_px, scroll_px, text = asyncio.run(visit())
    assert len(images) == len(FIGURE_NAMES)
    for complete, natural_w, natural_h, shown_w in images:
        assert complete and natural_w >= 800 and natural_h >= 300
        assert 0 < shown_w <= viewport_px  # scaled down to the phone's width
    assert scroll_px <= viewport_px, "page scrolls sideways on a phone"
    assert "Set 2: 10 left, 9 right — one more rep on the right needed" in text
    assert "20 left, 19 right reps in 2 sets; uneven" in text
    rgb = _read_png_rgb(shot)
    assert rgb.shape[:2] == (1500, 1000)
    pixels = rgb.astype(np.int16)  # (differences of uint8 channels need a sign; int16 is enough)
    blue = (np.abs(pixels - np.array([0x1F, 0x6F, 0xB4], np.int16)).sum(axis=2) < 60).sum()
    orange = (np.abs(pixels - np.array([0xD9, 0x77, 0x1A], np.int16)).sum(axis=2) < 60).sum()
    assert blue > 500 and orange > 500, f"leg colours not drawn: blue {blue}, orange {orange} pixels"
    # distinct colours, each pixel's RGB packed into one integer (np.unique of rows, axis=0, sorts
    # 1.5 M rows lexicographically: ~2 s of CPU for the same count)
    colours = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    assert np.unique(colours).size > 50
    if os.environ.get("LEGREP_UPDATE_SCREENSHOT"):
        _update_docs_screenshot(_chromium(), tmp_path / "docs_shot")


def _update_docs_screenshot(browser: str, directory: Path) -> None:
    """Regenerate docs/report.png: `legrep report` on the bundled synthetic recording."""
    recording = REPO / "recordings" / "straight_leg_raise"
    if not (recording / "left.csv").is_file():
        pytest.skip(f"{recording} missing: cannot regenerate docs/report.png")
    directory.mkdir()
    out = directory / "report.html"
    args = ["report", "recordings/straight_leg_raise", "--out", str(out), "--no-history",
            "--exercise", "straight leg raise (synthetic recording)", "--started-at", "2026-05-01T18:30"]  # fmt: skip
    with contextlib.chdir(REPO):  # short file names in the page header
        assert main(args) == 0
    shot = directory / "shot.png"
    done = _chromium_run(browser, directory, ["--window-size=1000,1500", f"--screenshot={shot}", "--virtual-time-budget=5000"], out.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    (REPO / "docs").mkdir(exist_ok=True)
    shutil.copyfile(shot, REPO / "docs" / "report.png")


def test_session_without_reps_still_renders(tmp_path: Path) -> None:
    empty = SessionResult((), (), (Leg.LEFT, Leg.RIGHT), False, Diagnostics(), {})
    written = write_report(empty, tmp_path / "empty.html", png_dir=tmp_path)
    text = written["html"].read_text(encoding="utf-8")
    assert "0 left, 0 right reps in 0 sets" in text
    assert text.count("data:image/png;base64,") == 2 * len(FIGURE_NAMES)  # desktop and phone figures
    assert all(_png_size(written[name].read_bytes())[0] > 0 for name in FIGURE_NAMES)


# --------------------------------------------------------------------------- long sessions


def test_long_sessions_show_sets_not_reps() -> None:
    from legrep.report import DETAIL_MAX_REPS

    counts = tuple((10, 10) for _ in range(12))
    fast = frozenset({(Leg.LEFT, 3, 2), (Leg.RIGHT, 7, 5), (Leg.RIGHT, 11, 1)})
    result = make_session(counts=counts, fast_down=fast, rest_s=10.0)
    assert len(result.reps) > DETAIL_MAX_REPS
    figures = build_figures(result, Settings(min_down_s=1.0))
    gids = [a.get_gid() for a in figures["angle"].findobj() if a.get_gid()]
    assert not [g for g in gids if g.startswith("rep:")]
    # one shaded span per set, over each set's time, per leg (one collection per leg's axes)
    spans = [a for a in figures["angle"].findobj() if (a.get_gid() or "").startswith("sets:")]
    assert sorted(a.get_gid() for a in spans) == ["sets:left:12", "sets:right:12"]
    for coll in spans:
        xs = [(float(p.vertices[:, 0].min()), float(p.vertices[:, 0].max())) for p in coll.get_paths()]
        assert xs == [(st.start_s, st.end_s) for st in result.sets]
    assert sorted(g for g in gids if g.startswith("flags:")) == ["flags:left:1", "flags:right:2"]
    # range and tempo: one point per set per leg, at the set's median
    for name, measure in (("range", "peak_deg"), ("tempo", "up_s")):
        ax = figures[name].axes[0]
        for line in (ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("trend:")):
            leg = Leg(line.get_gid().split(":")[1])
            assert list(line.get_xdata()) == list(range(1, 13))
            medians = [float(np.median([getattr(r, measure) for r in result.reps_of(leg) if r.set == k])) for k in range(1, 13)]
            assert list(line.get_ydata()) == pytest.approx(medians)
        assert len(ax.patches) == 0  # no bar per rep


def test_the_drawn_angle_trace_keeps_every_peak() -> None:
    from legrep.report import _envelope

    rng = np.random.default_rng(3)
    n = 2_880_001  # 8 h at 100 Hz, and an uneven last bucket
    t = np.arange(n) / 100.0
    a = rng.normal(0.0, 1.0, n)
    spikes = rng.choice(n, 50, replace=False)
    a[spikes] = 100.0 + rng.uniform(0, 5, 50)
    et, ea = _envelope(t, a, 2000)
    assert len(et) <= 2002 and bool(np.all(np.diff(et) >= 0))
    bucket_s = n / 1000 / 100.0
    for k in spikes:  # every spike is drawn: a point >= 100 deg in its pixel column
        near = np.abs(et - t[k]) <= bucket_s
        assert ea[near].max() >= 100.0
    assert ea.max() == a.max() and ea.min() == a.min()


@pytest.mark.parametrize("seed", range(3))
def test_the_streamed_trace_envelope_keeps_every_bins_extremes_for_any_chunking(seed: int) -> None:
    """TraceEnvelope (report's angle trace, reduced as it streams): at most max_points points, in
    time order, each a sample of the trace; per final time bin exactly the trace's lowest and
    highest sample there (so every peak and the global extremes survive); the same for any chunking."""
    import numpy as np

    from legrep.report import TraceEnvelope

    rng = np.random.default_rng(seed)
    n = 200_000
    t = np.cumsum(rng.uniform(0.005, 0.015, n)) + 3.0
    t[n // 2 :] += 40.0  # a gap
    a = np.cumsum(rng.normal(size=n)) * 0.1 + 30.0 * np.sin(t / 7.0)
    a[rng.integers(0, n, 5)] += 200.0  # spikes
    results = []
    for chunking in range(3):
        env = TraceEnvelope(max_points=1000)
        cuts = np.sort(rng.integers(0, n, 40 + 300 * chunking)) if chunking else np.array([], int)
        for part_t, part_a in zip(np.split(t, cuts), np.split(a, cuts)):
            env.update(part_t, part_a)
        results.append((env.trace(), env.width_s))
    (got_t, got_a), width = results[0]
    for (other_t, other_a), other_width in results[1:]:
        np.testing.assert_array_equal(got_t, other_t)
        np.testing.assert_array_equal(got_a, other_a)
        assert other_width == width
    assert len(got_t) <= 1000 and np.all(np.diff(got_t) >= 0)
    index = np.searchsorted(t, got_t)
    np.testing.assert_array_equal(t[index], got_t)
    np.testing.assert_array_equal(a[index], got_a)
    assert got_a.max() == a.max() and got_a.min() == a.min()
    bins = ((t - t[0]) / width).astype(int)
    for b in np.unique(bins)[:: max(1, len(np.unique(bins)) // 50)]:
        inside = bins == b
        mine = ((got_t - t[0]) / width).astype(int) == b
        assert got_a[mine].min() == a[inside].min() and got_a[mine].max() == a[inside].max()


def test_the_phone_figures_drawn_in_a_forked_child_are_the_same_bytes(tmp_path: Path) -> None:
    """write_report draws the phone figures in a forked child (one thread, several cores: a
    fresh interpreter, as the CLI runs) while it draws the others: the same PNG bytes as drawn
    in the process itself, and the child is really used."""
    import pickle
    import sys

    if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
        pytest.skip("needs fork and two cores")
    data = tmp_path / "result.pickle"
    data.write_bytes(pickle.dumps(make_session(counts=((3, 3), (3, 2)))))  # (a small session: the bytes, not the drawing, are checked)
    script = (
        "import pickle, sys\n"
        "from legrep import report\n"
        "from legrep.settings import Settings\n"
        f"result = pickle.loads(open({str(data)!r}, 'rb').read())\n"
        "aside = report._phone_figures_aside(result, Settings())\n"
        "assert aside.__name__ == 'collect', aside.__name__  # (forked)\n"
        "got = aside()\n"
        "assert got == report.phone_figures_png(result, Settings())\n"
        "print('same', sorted(got))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "same ['angle', 'range', 'tempo']"
