"""The phone page: one self-contained HTML document (inline CSS, JS and SVG; nothing from the network).

It opens ``events`` (server-sent events, same origin, the page's own ``token`` passed on) and
redraws on every message: per leg the count and what remains, the live hip angle on a gauge with
the target zone, the last rep's peak and tempo, battery and link; the set, the balance line and
the uneven warning. ``window.legrepLog`` keeps, per message, when it was painted (epoch ms) next
to the server's stamps, for ``benchmarks/live.py``.
"""

PAGE_HTML = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<link rel="icon" href="data:,">
<title>legrep live</title>
<style>
*{box-sizing:border-box}
body{margin:0;background:#0f1419;color:#e9eef2;font:16px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:40rem;margin:0 auto;padding:10px}
header{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
h1{font-size:18px;margin:0;font-weight:600;color:#9fb0bf}
#set{font-size:20px;font-weight:700}
#clock{font-variant-numeric:tabular-nums;color:#9fb0bf}
#legs{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:8px;margin-top:8px}
.leg{background:#1a2129;border-radius:12px;padding:8px 10px;min-width:0}
.name{font-size:18px;font-weight:700;text-transform:uppercase;letter-spacing:.04em}
.left .name{color:#5aa9e6}.right .name{color:#f0a04b}
.count{font-size:clamp(64px,24vw,132px);font-weight:800;line-height:1;font-variant-numeric:tabular-nums;text-align:center}
.remain{text-align:center;font-size:17px;color:#c9d3dc;min-height:1.4em}
.remain.done{color:#61d095;font-weight:700}
svg{display:block;width:100%;height:auto}
.angle{font-size:26px;font-weight:700;text-align:center;font-variant-numeric:tabular-nums}
.last,.link{font-size:15px;color:#c9d3dc;text-align:center}
.flags{color:#ffb347;font-weight:600}
.link .bad{color:#ff6b6b;font-weight:700}
#balance{margin-top:8px;font-size:17px;text-align:center;color:#c9d3dc}
#warning{margin-top:8px;padding:10px;border-radius:10px;background:#5c1d1d;color:#ffd6d6;font-size:19px;font-weight:700;text-align:center}
#done{margin-top:8px;padding:10px;border-radius:10px;background:#1d4d33;color:#d6ffe6;font-size:22px;font-weight:800;text-align:center}
#status{margin-top:8px;font-size:14px;color:#9fb0bf;text-align:center}
[hidden]{display:none!important}
</style></head>
<body><main>
<header><h1>legrep</h1><span id="set">set 1</span><span id="clock">00:00</span></header>
<section id="legs"></section>
<div id="balance"></div>
<div id="warning" hidden></div>
<div id="done" hidden>Done</div>
<div id="status">connecting…</div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const R = 92, CX = 78, CY = 122, MAX = 120;
function pt(deg, r) { const a = deg * Math.PI / 180; return [(CX + r * Math.cos(a)).toFixed(1), (CY - r * Math.sin(a)).toFixed(1)]; }
function wedge(a1, a2, r) { const p = pt(a1, r), q = pt(a2, r); return `M${CX} ${CY}L${p[0]} ${p[1]}A${r} ${r} 0 0 0 ${q[0]} ${q[1]}Z`; }
function gauge(leg) {
  let ticks = "";
  for (const d of [0, 30, 60, 90, 120]) { const a = pt(d, R), b = pt(d, R + 7), t = pt(d, R + 17);
    ticks += `<line x1="${a[0]}" y1="${a[1]}" x2="${b[0]}" y2="${b[1]}" stroke="#6b7b88" stroke-width="2"/>` +
             `<text x="${t[0]}" y="${t[1]}" fill="#9fb0bf" font-size="12" text-anchor="middle" dominant-baseline="middle">${d}</text>`; }
  return `<svg viewBox="0 0 200 136" role="img" aria-label="${leg} hip angle">` +
    `<path d="${wedge(0, MAX, R)}" fill="#24303b"/>` +
    `<path id="zone-${leg}" d="" fill="#2e7d4f"/>` + ticks +
    `<line id="needle-${leg}" x1="${CX}" y1="${CY}" x2="${CX + R}" y2="${CY}" stroke="#ffffff" stroke-width="7" stroke-linecap="round"/>` +
    `<circle cx="${CX}" cy="${CY}" r="7" fill="#ffffff"/></svg>`;
}
function card(leg) {
  const el = document.createElement("div");
  el.className = "leg " + leg; el.id = "leg-" + leg;
  el.innerHTML = `<div class="name">${leg}</div><div class="count" id="count-${leg}">0</div>` +
    `<div class="remain" id="remain-${leg}"></div>${gauge(leg)}` +
    `<div class="angle" id="angle-${leg}">--</div><div class="last" id="last-${leg}">no rep yet</div>` +
    `<div class="link" id="link-${leg}"></div>`;
  $("legs").appendChild(el);
}
function clock(t) { t = Math.max(0, Math.floor(t)); return String(Math.floor(t / 60)).padStart(2, "0") + ":" + String(t % 60).padStart(2, "0"); }
function text(id, value) { const el = $(id); if (el.textContent !== value) el.textContent = value; }
window.legrepLog = [];
let zoneFor = null;
function render(s) {
  for (const L of s.legs) {
    if (!$("leg-" + L.leg)) card(L.leg);
    text("count-" + L.leg, String(L.reps));
    const rem = $("remain-" + L.leg);
    if (L.remaining === null) { text("remain-" + L.leg, ""); }
    else if (L.remaining === 0) { text("remain-" + L.leg, `${s.reps_per_leg} done`); rem.className = "remain done"; }
    else { text("remain-" + L.leg, `${L.remaining} to go of ${s.reps_per_leg}`); rem.className = "remain"; }
    const a = L.angle_deg;
    const shown = a === null ? 0 : Math.max(0, Math.min(MAX, a));
    const p = pt(shown, R);
    const n = $("needle-" + L.leg); n.setAttribute("x2", p[0]); n.setAttribute("y2", p[1]);
    const inZone = a !== null && Math.abs(a - s.target_deg) <= s.zone_deg;
    n.setAttribute("stroke", inZone ? "#61d095" : "#ffffff");
    text("angle-" + L.leg, a === null ? "--" : `${Math.round(a)}°`);
    if (L.last) {
      const f = L.last.flags.length ? ` <span class="flags">${L.last.flags.join(", ").replace(/_/g, " ")}</span>` : "";
      const html = `peak ${Math.round(L.last.peak_deg)}° · up ${L.last.up_s.toFixed(1)} / hold ${L.last.hold_s.toFixed(1)} / down ${L.last.down_s.toFixed(1)} s${f}`;
      const el = $("last-" + L.leg); if (el.innerHTML !== html) el.innerHTML = html;
    }
    const battery = L.battery_pct === null ? "battery --" : `battery ${L.battery_pct}%`;
    const link = L.link === "connected" ? "connected" : `<span class="bad">${L.link}</span>`;
    const lh = `${battery} · ${link}`; const le = $("link-" + L.leg); if (le.innerHTML !== lh) le.innerHTML = lh;
  }
  const key = s.target_deg + "/" + s.zone_deg;
  if (zoneFor !== key) { zoneFor = key;
    for (const L of s.legs) $("zone-" + L.leg).setAttribute("d", wedge(Math.max(0, s.target_deg - s.zone_deg), Math.min(MAX, s.target_deg + s.zone_deg), R)); }
  text("set", s.sets_total ? `set ${s.set_no} of ${s.sets_total}` : `set ${s.set_no}`);
  text("clock", clock(s.t));
  text("balance", s.balance);
  $("warning").hidden = !s.warning; text("warning", s.warning);
  $("done").hidden = !s.done;
  text("status", s.ended ? "session ended" : (s.note || "live"));
}
const es = new EventSource("events" + (token ? "?token=" + encodeURIComponent(token) : ""));
let ended = false;
es.onmessage = (e) => {
  const s = JSON.parse(e.data);
  if (s.ended && !ended) { ended = true; es.close(); }  // the session is over: no reconnecting
  const got = performance.timeOrigin + performance.now();
  render(s);
  requestAnimationFrame(() => {
    const log = window.legrepLog;
    log.push({ got_ms: got, painted_ms: performance.timeOrigin + performance.now(), wall_ms: s.wall_ms, t: s.t,
               angle_t: Object.fromEntries(s.legs.map((L) => [L.leg, L.angle_t_s])), ended: !!s.ended });
    if (log.length > 20000) log.splice(0, 10000);
  });
};
es.onerror = () => { if (!ended) text("status", "link to legrep lost, retrying…"); };
</script></body></html>
"""
