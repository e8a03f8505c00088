// ikelb's dashboard: per service, each server's state, health, weight,
// probe RTT, established IKE SAs (a bar per server), client addresses,
// and the service's packets/s and drops/s from two successive /v1/stats
// reads. Plain DOM, no framework, no network access beyond the API.
"use strict";

const POLL_MS = 2000;
let last = null; // { t, svc: { name: { rx, drops } } } of the previous poll

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
  return j;
}

function sumDrops(drops) {
  return Object.values(drops || {}).reduce((a, d) => a + d.packets, 0);
}

function rates(stats, now) {
  const cur = { t: now, svc: {} };
  for (const s of stats.services) {
    cur.svc[s.name] = { rx: s.counters.rx.packets, drops: sumDrops(s.drops) };
  }
  const out = {};
  for (const [name, c] of Object.entries(cur.svc)) {
    const p = last && last.svc[name];
    const dt = last ? (now - last.t) / 1000 : 0;
    out[name] = p && dt > 0 ? { pps: (c.rx - p.rx) / dt, dps: (c.drops - p.drops) / dt } : null;
  }
  last = cur;
  return out;
}

function serverRow(s, maxSas) {
  const pct = maxSas ? Math.round(100 * s.sas / maxSas) : 0;
  const bar = el("span", { class: "bar" }, el("span", { style: "width:" + pct + "%" }));
  return el("tr", { "data-server": s.name },
    el("td", {}, s.name),
    el("td", {}, s.address),
    el("td", { class: "state-" + s.state }, s.state),
    el("td", {}, s.health),
    el("td", { class: "num" }, s.weight),
    el("td", { class: "num" }, s.rtt_ms === undefined ? "–" : s.rtt_ms + " ms"),
    el("td", { class: "num sas", "data-sas": s.sas }, s.sas),
    el("td", {}, bar),
    el("td", { class: "num" }, s.client_addresses));
}

function serviceCard(svc, rate) {
  const maxSas = Math.max(1, ...svc.servers.map(s => s.sas));
  const head = el("tr", {}, ...["server", "address", "state", "health", "weight", "RTT",
    "SAs", "", "client addresses"].map(h => el("th", {}, h)));
  const body = svc.servers.map(s => serverRow(s, maxSas));
  const r = rate ? rate.pps.toFixed(1) + " packets/s in, " + rate.dps.toFixed(1) + " drops/s"
                 : "measuring…";
  return el("div", { class: "service", "data-service": svc.name },
    el("h2", {}, svc.name + "  ", el("small", {}, svc.vip + " ports " + svc.ports.join(", ") +
       " · " + svc.forwarding + " · persistence " + svc.persistence + " · " + svc.scheduler)),
    el("div", { class: "rates" }, r),
    el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
}

async function poll() {
  try {
    const [status, stats] = await Promise.all([get("/v1/status"), get("/v1/stats")]);
    const rs = rates(stats, Date.now());
    const main = document.getElementById("services");
    main.replaceChildren(...status.services.map(s => serviceCard(s, rs[s.name])));
    const sas = status.services.reduce((a, s) => a + s.servers.reduce((b, x) => b + x.sas, 0), 0);
    document.getElementById("summary").textContent = "engine " + status.engine + " · up " +
      status.uptime_s + " s · " + sas + " IKE SAs · last reload " + status.last_reload.result;
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "API: " + e.message;
  }
}

function lookupPath(q) {
  q = q.trim();
  if (/^(0x)?[0-9a-f]+$/i.test(q) && !q.includes(".") && q.replace(/^0x/i, "").length > 4) {
    return "/v1/lookup?spi=" + encodeURIComponent(q);
  }
  return "/v1/lookup?addr=" + encodeURIComponent(q);
}

async function lookup(ev) {
  ev.preventDefault();
  const box = document.getElementById("answer");
  const q = document.getElementById("q").value;
  if (!q.trim()) return;
  box.hidden = false;
  try {
    const r = await get(lookupPath(q));
    const rows = r.entries.map(e => el("tr", {},
      ...[e.service, e.server, e.rule, e.table,
          e.client ? e.client + (e.client_port ? ":" + e.client_port : "") : (e.spi || "–"),
          e.last_seen === null ? "–" : e.last_seen + " s ago",
          e.expires_in === null ? "–" : e.expires_in + " s"].map(v => el("td", {}, v))));
    box.replaceChildren(el("p", {}, el("b", {}, q), " → ", el("b", {}, r.service + "/" + r.server),
      " (rule " + r.rule + ")"),
      el("table", {}, el("thead", {}, el("tr", {}, ...["service", "server", "rule", "table",
        "client", "last seen", "expires in"].map(h => el("th", {}, h)))), el("tbody", {}, ...rows)));
  } catch (e) {
    box.replaceChildren(el("p", {}, q + ": " + e.message));
  }
}

document.getElementById("lookup").addEventListener("submit", lookup);
// A link to a lookup: /#q=203.0.113.7:4500 fills the box and runs it.
if (location.hash.startsWith("#q=")) {
  document.getElementById("q").value = decodeURIComponent(location.hash.slice(3));
  lookup(new Event("submit"));
}
poll();
setInterval(poll, POLL_MS);
