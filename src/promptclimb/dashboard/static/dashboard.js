// promptclimb dashboard: polls /api/state and redraws the parts that changed, without a reload.
// Store text (templates, LLM replies) is only ever inserted as text nodes, never as HTML.
"use strict";

const POLL_MS = 1000;
let version = "";
let cell = "";
const shown = {};       // section id -> JSON last drawn there
const seenTrials = new Set();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1));

function table(header, rows, rowAttrs) {
  return el("table", {}, el("tr", {}, header.map((h) => el("th", {}, h))),
    rows.map((r, i) => el("tr", rowAttrs ? rowAttrs(i) : {}, r.map((c) =>
      (c instanceof Node && c.tagName === "TD") ? c : el("td", {}, c)))));
}
const num = (v) => el("td", { class: "num" }, pct(v));

function update(id, data, draw) {
  const json = JSON.stringify(data);
  if (shown[id] === json) return;
  shown[id] = json;
  const box = document.getElementById(id);
  box.replaceChildren(...[draw(data)].flat().filter(Boolean));
}

function curve(points) {
  if (!points.length) return el("p", { class: "muted" }, "no scored trial yet");
  const W = 900, H = 280, L = 48, R = 12, T = 10, B = 34;
  const xs = points.map((p) => p.queries), ys = points.flatMap((p) => [p.train, p.best]);
  const x0 = 0, x1 = Math.max(...xs, 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 0.02) { y0 -= 0.01; y1 += 0.01; }
  const X = (x) => L + (W - L - R) * (x - x0) / (x1 - x0);
  const Y = (y) => H - B - (H - T - B) * (y - y0) / (y1 - y0);
  const svg = svgEl("svg", { class: "curve", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "best train accuracy so far against scorer queries" });
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    svg.append(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: Y(y), y2: Y(y) }));
    svg.append(svgEl("text", { x: L - 6, y: Y(y) + 4, "text-anchor": "end" }, (100 * y).toFixed(1)));
  }
  svg.append(svgEl("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  svg.append(svgEl("text", { x: (L + W) / 2, y: H - 6, "text-anchor": "middle" },
    "scorer queries · dots: each trial's train accuracy (%), line: best so far"));
  for (let i = 0; i <= 4; i++) {
    const x = Math.round(x0 + (x1 - x0) * i / 4);
    svg.append(svgEl("text", { x: X(x), y: H - B + 14, "text-anchor": "middle" }, String(x)));
  }
  for (const p of points) svg.append(svgEl("circle", { class: "dot", cx: X(p.queries), cy: Y(p.train), r: 3 }));
  let d = "";
  points.forEach((p, i) => {
    d += (i ? ` H ${X(p.queries)} V ${Y(p.best)}` : `M ${X(p.queries)} ${Y(p.best)}`);
  });
  d += ` H ${X(x1)}`;
  svg.append(svgEl("path", { class: "best", d }));
  return svg;
}

function summary(s) {
  const rows = [["method", s.method], ["task", `${s.task} · ${s.shots} shot${s.shots === 1 ? "" : "s"} per class · seed ${s.seed}`],
    ["scorer · LLM", `${s.scorer} · ${s.llm}`],
    ["state", s.finished ? "finished" : "running (or stopped)"],
    ["best template (train)", `${s.best_template ?? "–"}  (${pct(s.best_train_score)})`],
    ["test of the chosen template", s.final_test_score === null ? "after the run" : pct(s.final_test_score)],
    ["trials", `${s.n_trials}: ${s.n_complete} scored, ${s.n_failed} failed, ${s.n_duplicates} duplicates`],
    ["budget used", `${s.scorer_queries} scorer queries · ${s.llm_calls} LLM calls · ${s.llm_tokens} tokens`]];
  return el("table", { class: "kv" }, rows.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))));
}

function trials(ts) {
  const best = ts.filter((t) => t.train !== null).reduce((b, t) => (b && b.train >= t.train ? b : t), null);
  const rows = ts.slice().reverse();
  const out = table(["#", "where", "state", "template / error", "train", "val", "test"], rows.map((t) => [
    String(t.number), t.pool ? "pool" : `r${t.restart} n${t.reset} k${t.iteration}`,
    el("td", { class: t.state }, t.state), t.template ?? `(${t.error ?? ""})`, num(t.train), num(t.val), num(t.test)]),
  (i) => {
    const t = rows[i], cls = [];
    if (best && t.number === best.number) cls.push("best");
    if (seenTrials.size && !seenTrials.has(t.number)) cls.push("new");
    return { class: cls.join(" ") || null, "data-trial": t.number };
  });
  ts.forEach((t) => seenTrials.add(t.number));
  return out;
}

function conversations(cs) {
  if (!cs.length) return el("p", { class: "muted" }, "no LLM conversation yet (or this method uses no LLM)");
  return cs.map((c) => {
    const box = el("details", { "data-id": c.id, open: openDetails.has(c.id) },
      el("summary", {}, `restart ${c.restart} · reset ${c.reset} — ${c.suggestions} suggestions, best ${pct(c.best)}`),
      c.messages.map((m) => el("div", { class: `msg ${m.role}` }, el("div", { class: "role" }, m.role),
        el("pre", {}, m.content))));
    box.addEventListener("toggle", () => (box.open ? openDetails.add(c.id) : openDetails.delete(c.id)));
    return box;
  });
}
const openDetails = new Set();

function references({ refs, summary: s }) {
  if (!refs.length) return null;
  const chosen = ["chosen (best on train)", s.best_template ?? "–", num(s.best_train_score), num(s.final_test_score)];
  return [el("h2", {}, "Chosen template against the references on test (references: report only, never used to choose)"),
    table(["", "template", "train", "test"],
      [chosen, ...refs.map((r) => [`reference: ${r.label}`, r.template, num(r.train), num(r.test)])])];
}

function renderRun(d) {
  document.getElementById("run").hidden = false;
  document.getElementById("grid").hidden = true;
  document.getElementById("title").textContent =
    `promptclimb · ${d.summary.method} on ${d.summary.task}` + (d.cell ? ` · cell ${d.cell}` : "");
  update("run-summary", d.summary, summary);
  update("run-warnings", d.warnings, (ws) => ws.map((w) => el("p", { class: "warn" }, `warning: ${w}`)));
  update("run-curve", d.curve, curve);
  update("run-references", { refs: d.references, summary: d.summary }, references);
  document.getElementById("run-count").textContent = `(${d.trials.length}, newest first)`;
  update("run-trials", d.trials, trials);
  update("run-conversations", d.conversations, conversations);
}

function renderGrid(d) {
  document.getElementById("grid").hidden = false;
  document.getElementById("run").hidden = true;
  document.getElementById("title").textContent = `promptclimb · grid ${d.path}`;
  update("grid-counts", d.counts, (c) => Object.entries(c).map(([k, v]) => el("span", { class: k }, `${v} ${k}  `)));
  for (const name of ["test", "train"]) {
    update(`grid-${name}`, d.tables[name], (t) => (t.rows.length ? table(t.header, t.rows) : el("p", {}, "–")));
  }
  update("grid-cells", d.cells, (cs) => table(
    ["cell", "state", "trials", "best train", "test", "chosen template"], cs.map((c) => [
      c.state === "pending" ? c.id : el("a", { href: `#cell=${encodeURIComponent(c.id)}` }, c.id),
      el("td", { class: c.state }, c.state), String(c.trials), num(c.best_train), num(c.test), c.template ?? ""])));
}

function setStatus(text, ok) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = `status ${ok ? "live" : "down"}`;
}

async function poll() {
  try {
    const q = new URLSearchParams({ v: version });
    if (cell) q.set("cell", cell);
    const res = await fetch(`api/state?${q}`, { cache: "no-store" });
    const d = await res.json();
    if (!res.ok) throw new Error(d.error || res.statusText);
    if (d.kind) {
      version = d.version;
      (d.kind === "grid" ? renderGrid : renderRun)(d);
    }
    setStatus(`live · watching ${d.path ?? document.body.dataset.path ?? ""} · checked ${new Date().toLocaleTimeString()}`, true);
    if (d.path) document.body.dataset.path = d.path;
  } catch (err) {
    setStatus(`not updating: ${err.message}`, false);
  }
  setTimeout(poll, POLL_MS);
}

function route() {
  const m = location.hash.match(/^#cell=(.+)$/);
  cell = m ? decodeURIComponent(m[1]) : "";
  document.getElementById("back").hidden = !cell;
  version = "";
  for (const k of Object.keys(shown)) delete shown[k];
  seenTrials.clear();
}

window.addEventListener("hashchange", route);
route();
poll();
