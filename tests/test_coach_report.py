"""The session report on a phone (390 px wide) in headless Chromium: the sets table fits without
scrolling, the phone figures are the ones shown, and chart text is at least 11 px as displayed;
the headline speaks about form, not only counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cdp import Browser, chromium_binary
from legrep.diagnostics import Diagnostics
from legrep.model import Leg, Rep, SessionResult, SetSummary
from legrep.report import PHONE_DPI, build_figures, phone_rc, summarize_session, write_report
from legrep.settings import Settings

PROBE_JS = """(() => {
  const table = document.getElementById('sets');
  const wrap = table.parentElement;
  const imgs = [...document.images].map(i => [i.currentSrc.length, i.naturalWidth, i.getBoundingClientRect().width]);
  const texts = [...document.querySelectorAll('body *')].filter(e => [...e.childNodes].some(c => c.nodeType === 3 && c.textContent.trim()));
  return {table: table.scrollWidth, wrap: wrap.clientWidth, view: document.documentElement.clientWidth,
          page: document.documentElement.scrollWidth, imgs: imgs,
          min_text_px: Math.min(...texts.map(e => parseFloat(getComputedStyle(e).fontSize))),
          headline: document.getElementById('headline').textContent};
})()"""


LOADED_JS = """new Promise((resolve) => {
  const images = () => Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })));
  if (document.readyState === 'complete') images().then(resolve); else addEventListener('load', () => images().then(resolve));
})"""
"""Resolves once the page has loaded and every image is decoded (awaited, not polled)."""


def session(n_sets: int = 3, per_leg: int = 12) -> SessionResult:
    """A session built by hand: every rep lowered in 0.6 s (flag ``fast_down``); set 2 one short on the right."""
    import numpy as np

    reps, sets, t = [], [], 2.0
    for s in range(1, n_sets + 1):
        start = t
        counts = {}
        for leg in (Leg.LEFT, Leg.RIGHT):
            n = per_leg - (1 if (s == 2 and leg is Leg.RIGHT) else 0)
            counts[leg] = n
            for k in range(1, n + 1):
                end = t + 1.2 + 0.5 + 0.6
                reps.append(Rep(leg, t, t + 1.45, end, 0.0, 80.0, 80.0, 1.2, 0.5, 0.6, end + 0.3, ("fast_down",), s, k))
                t = end + 0.8
        sets.append(SetSummary(s, start, t - 0.8, counts[Leg.LEFT], counts[Leg.RIGHT], counts[Leg.LEFT] != counts[Leg.RIGHT]))
        t += 25.0
    time_s = np.arange(0.0, t, 0.02)
    traces = {leg: (time_s, np.zeros_like(time_s)) for leg in (Leg.LEFT, Leg.RIGHT)}
    return SessionResult(tuple(reps), tuple(sets), (Leg.LEFT, Leg.RIGHT), True, Diagnostics(), traces)


def test_headline_mentions_form() -> None:
    result = session()
    n = len(result.reps)
    assert summarize_session(result).headline == f"36 left, 35 right reps in 3 sets; uneven; all {n} reps lowered too fast"


def test_report_reads_on_a_phone(tmp_path: Path) -> None:
    chromium_binary()
    result = session()
    html = write_report(result, tmp_path / "report.html", Settings(), exercise="straight leg raise")["html"]
    probe = asyncio.run(_probe(html))
    assert probe["view"] == 390
    assert probe["table"] <= probe["wrap"] <= probe["view"], probe  # the sets table fits: no scrolling
    assert probe["page"] <= probe["view"]  # nor does the page scroll sideways
    assert probe["min_text_px"] >= 11
    assert "all 71 reps lowered too fast" in probe["headline"]
    # the phone figures are shown (840 px wide PNGs), scaled to the screen
    with phone_rc():
        figures = build_figures(result, Settings(), phone=True)
        smallest_pt = {
            name: min(t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))
                      if t.get_visible() and t.get_text().strip())
            for name, fig in figures.items()
        }  # fmt: skip
    assert len(probe["imgs"]) == len(figures)
    for (_, natural_px, shown_px), name in zip(probe["imgs"], figures):
        assert natural_px == round(figures[name].get_figwidth() * PHONE_DPI)
        scale = shown_px / natural_px
        shown_text_px = smallest_pt[name] * PHONE_DPI / 72.0 * scale
        assert shown_text_px >= 11.0, (name, smallest_pt[name], scale, shown_text_px)


async def _probe(html: Path) -> dict:  # type: ignore[type-arg]
    async with Browser(390, 844) as browser:
        page = await browser.page()
        await page.goto(html.as_uri())
        await page.eval(LOADED_JS)
        return await page.eval(PROBE_JS)  # type: ignore[no-any-return]
