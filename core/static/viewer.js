// artgraph viewer: draws what the server's routes say — GET /jobs, /jobs/{id}, /jobs/{id}/layout,
// and the Server-Sent Events of /jobs/{id}/events. The layout is computed by the server; this page
// only draws, and redraws at most once per animation frame however fast events arrive.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
};
const enc = encodeURIComponent;
const fileUrl = (job, name) => `/jobs/${enc(job)}/files/${name.split("/").map(enc).join("/")}`;
const seconds = (s) => (s == null ? "" : s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
const FINISHED = new Set(["done", "failed", "cancelled"]);
const IMAGE = /\.(png|jpe?g|gif|webp)$/i;

function banner(text, kind = "") {
  const b = $("#banner");
  b.hidden = !text;
  b.textContent = text || "";
  b.className = kind;
}

function setStatus(status) {
  const badge = $("#status");
  badge.textContent = status || "";
  badge.className = `badge ${status || ""}`;
}

// One place that turns an HTTP answer into data or a message on the page.
async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  } catch (err) {
    throw new PageError("The server cannot be reached; retrying…", "offline");
  }
  if (response.status === 401) {
    throw new PageError(
      "This server needs its token: open the address it printed when it started (…?token=…).", "auth");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (!response.ok) {
    throw new PageError((body && body.detail) || `The server answered ${response.status}.`, String(response.status));
  }
  return body;
}

class PageError extends Error {
  constructor(message, kind) { super(message); this.kind = kind; }
}

// --- the list of jobs ----------------------------------------------------------------------

async function jobsPage() {
  document.title = "artgraph · jobs";
  $("#title").textContent = "jobs";
  const main = $("#main");
  const refresh = async () => {
    try {
      const { jobs } = await getJson("/jobs?limit=200");
      banner("");
      main.replaceChildren(jobsTable(jobs));
    } catch (err) {
      banner(err.message, "error");
      if (err.kind === "auth") { main.replaceChildren(); return; }
    }
    setTimeout(refresh, 2000);
  };
  refresh();
}

function jobsTable(jobs) {
  if (!jobs.length) return el("p", { class: "hint", text: "No jobs yet. Submit one with artgraph submit or POST /jobs." });
  const rows = jobs.slice().reverse().map((job) => {
    const thumb = pickThumbnail(job.files || []);
    const when = job.created ? new Date(job.created * 1000).toLocaleString() : "";
    const took = job.started && job.finished ? seconds(job.finished - job.started) : "";
    return el("tr", {},
      el("td", { class: "thumb" }, thumb ? el("img", { src: fileUrl(job.id, thumb), alt: "", loading: "lazy" }) : ""),
      el("td", {}, el("a", { href: `/view/${enc(job.id)}`, text: job.name ? `${job.name} · ${job.id}` : job.id })),
      el("td", {}, el("span", { class: `badge ${job.status}`, text: job.status })),
      el("td", { text: job.position != null ? `#${job.position + 1} in queue` : took }),
      el("td", { text: when }));
  });
  return el("table", { class: "jobs" },
    el("thead", {}, el("tr", {}, ...["", "job", "status", "took", "submitted"].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows));
}

function pickThumbnail(files) {
  const outputs = files.filter((f) => IMAGE.test(f) && !f.startsWith("previews/"));
  const previews = files.filter((f) => f.startsWith("previews/") && IMAGE.test(f));
  return outputs[0] || previews[0] || null;
}

// --- the view of one run --------------------------------------------------------------------

class RunView {
  constructor(jobId) {
    this.job = jobId;
    this.nodes = new Map();   // id -> state
    this.dirty = new Set();
    this.selected = null;
    this.scale = 1;
    this.startedAt = null;
    this.finishedAt = null;
    this.lastSeq = 0;
    this.frame = null;
  }

  async start() {
    document.title = `artgraph · ${this.job}`;
    $("#title").textContent = this.job;
    let job;
    try {
      job = await getJson(`/jobs/${enc(this.job)}`);
    } catch (err) {
      setStatus("");
      $("#main").replaceChildren(el("p", { class: "hint" }, err.message, " ", el("a", { href: "/", text: "All jobs" })));
      if (err.kind === "offline") setTimeout(() => this.start(), 2000);
      return;
    }
    this.status = job.status;
    setStatus(job.status);
    if (job.name) $("#title").textContent = `${job.name} · ${this.job}`;
    this.files = job.files || [];
    this.build();
    await this.loadLayout();
    if (job.status === "queued") banner(job.position != null ? `Queued: ${job.position} job(s) ahead.` : "Waiting for the run to start…");
    this.listen();
    setInterval(() => this.tick(), 1000);
  }

  build() {
    this.pane = el("div", { class: "graph-pane" },
      el("div", { class: "tools" },
        el("button", { type: "button", title: "zoom in", text: "+", onclick: () => this.zoom(1.25) }),
        el("button", { type: "button", title: "zoom out", text: "−", onclick: () => this.zoom(0.8) }),
        el("button", { type: "button", title: "fit", text: "fit", onclick: () => this.fit() })));
    this.svg = el("svg:svg", { class: "graph" });
    this.pane.append(this.svg);
    this.cards = el("div", { class: "cards" });
    $("#main").replaceChildren(el("div", { class: "run" }, this.pane, this.cards));
  }

  async loadLayout() {
    try {
      this.layout = await getJson(`/jobs/${enc(this.job)}/layout`);
    } catch (err) {
      banner(`The graph cannot be drawn: ${err.message}`, "error");
      this.layout = { nodes: [], edges: [], width: 0, height: 0 };
    }
    this.drawGraph();
  }

  state(id) {
    let s = this.nodes.get(id);
    if (!s) {
      s = { id, type: "", state: "waiting", value: null, max: null, metrics: {}, series: {}, started: null,
            seconds: null, preview: null, message: null, traceback: null, images: [], history: null, reason: "" };
      this.nodes.set(id, s);
    }
    return s;
  }

  drawGraph() {
    const { nodes, edges, width, height } = this.layout;
    const pad = 20;
    this.svg.replaceChildren();
    this.svg.setAttribute("viewBox", `${-pad} ${-pad} ${width + 2 * pad} ${height + 2 * pad}`);
    this.size = { w: width + 2 * pad, h: height + 2 * pad };
    const at = new Map(nodes.map((n) => [n.id, n]));
    const edgeLayer = el("svg:g");
    for (const e of edges) {
      const a = at.get(e.from), b = at.get(e.to);
      if (!a || !b) continue;
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2, mx = (x1 + x2) / 2;
      edgeLayer.append(el("svg:path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` },
        el("svg:title", { text: `${e.from}.${e.output} → ${e.to}.${e.input} (${e.type})` })));
    }
    const nodeLayer = el("svg:g");
    this.boxes = new Map();
    for (const n of nodes) {
      const s = this.state(n.id);
      s.type = n.type;
      const g = el("svg:g", { class: "node waiting", transform: `translate(${n.x},${n.y})`, "data-node": n.id,
                              onclick: () => this.select(n.id) },
        el("svg:rect", { class: "box", width: n.w, height: n.h }),
        el("svg:text", { x: 10, y: 19, text: n.id }),
        el("svg:text", { class: "type", x: 10, y: 35, text: n.type }),
        el("svg:text", { class: "time", x: n.w - 10, y: 19, "text-anchor": "end" }),
        el("svg:rect", { class: "bar-bg", x: 10, y: n.h - 12, width: n.w - 20, height: 4 }),
        el("svg:rect", { class: "bar", x: 10, y: n.h - 12, width: 0, height: 4 }));
      nodeLayer.append(g);
      this.boxes.set(n.id, g);
      this.dirty.add(n.id);
    }
    this.svg.append(edgeLayer, nodeLayer);
    this.fit();
    this.schedule();
  }

  zoom(factor) { this.scale = Math.min(4, Math.max(0.1, this.scale * factor)); this.applyZoom(); }

  fit() {
    // Shrink a wide graph to the pane, but never below a size that can still be read and
    // clicked: a long graph scrolls instead.
    const width = this.pane.clientWidth - 24;
    this.scale = this.size && this.size.w > 0 ? Math.max(0.4, Math.min(1, width / this.size.w)) : 1;
    this.applyZoom();
  }

  applyZoom() {
    if (!this.size) return;
    this.svg.setAttribute("width", Math.max(1, this.size.w * this.scale));
    this.svg.setAttribute("height", Math.max(1, this.size.h * this.scale));
  }

  select(id) {
    this.selected = this.selected === id ? null : id;
    for (const [nid, g] of this.boxes) g.classList.toggle("selected", nid === this.selected);
    if (this.selected) {
      const card = this.card(this.state(id));
      for (const c of this.cards.children) c.classList.toggle("selected", c === card);
      card.scrollIntoView({ block: "nearest" });
    }
  }

  // --- events ---

  listen() {
    if (this.source) this.source.close();
    // Started again after the server went away: from the last event seen, not from the start.
    const source = new EventSource(`/jobs/${enc(this.job)}/events?coalesce=1&after=${this.lastSeq}`);
    this.source = source;
    const on = (type, fn) => source.addEventListener(type, (msg) => {
      const event = JSON.parse(msg.data);
      this.lastSeq = Math.max(this.lastSeq, event.seq || 0);
      fn.call(this, event);
      if (event.node) this.dirty.add(event.node);
      this.schedule();
    });
    on("run_start", this.onRunStart);
    on("node_cached", (e) => Object.assign(this.state(e.node), { state: "cached", reason: e.reason }));
    on("node_start", (e) => Object.assign(this.state(e.node), { state: "running", started: e.time, type: e.type }));
    on("progress", this.onProgress);
    on("preview", (e) => { this.state(e.node).preview = `${e.path}?v=${e.seq}`; });
    on("node_done", this.onNodeDone);
    on("node_error", (e) => Object.assign(this.state(e.node),
      { state: "failed", message: e.message, traceback: e.traceback || null, seconds: e.seconds }));
    on("run_done", this.onRunDone);
    source.onopen = () => { if (this.offline) { this.offline = false; banner(this.bannerText || ""); } };
    source.onerror = () => this.onStreamEnd();
  }

  onRunStart(e) {
    if (this.startedAt != null) {
      this.bannerText = "The run started again (the server was restarted while it ran).";
      banner(this.bannerText);
      for (const s of this.nodes.values()) {
        Object.assign(s, { state: "waiting", value: null, seconds: null, started: null });
        this.dirty.add(s.id);
      }
    } else {
      banner("");
    }
    this.startedAt = e.time;
    this.finishedAt = null;
    if (e.graph) $("#title").textContent = `${e.graph} · ${this.job}`;
    this.setRunStatus("running");
    for (const id of e.nodes || []) this.dirty.add(id);
    if (!this.layout || !this.layout.nodes.length) {
      this.layout = null;
      this.loadLayout();
    }
  }

  onProgress(e) {
    const s = this.state(e.node);
    s.state = "running";
    s.value = e.value;
    s.max = e.max;
    s.metrics = e.metrics || {};
    for (const [k, v] of Object.entries(s.metrics)) {
      if (typeof v !== "number") continue;
      const series = (s.series[k] = s.series[k] || []);
      series.push({ x: e.value, y: v });
      if (series.length > 2000) s.series[k] = series.filter((_, i) => i % 2 === 0);
    }
  }

  onNodeDone(e) {
    const s = this.state(e.node);
    s.state = e.status === "executed" ? "done" : e.status;
    s.seconds = e.seconds;
    s.reason = e.reason || "";
    const outputs = e.outputs || {};
    s.images = [];
    for (const value of Object.values(outputs)) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (typeof v === "string" && IMAGE.test(v) && !v.startsWith("/")) s.images.push(v);
      }
      if (value && typeof value === "object" && !Array.isArray(value)) {
        const numeric = Object.entries(value).filter(([, a]) => Array.isArray(a) && a.length && a.every((x) => typeof x === "number"));
        if (numeric.length >= 2) s.history = Object.fromEntries(numeric);
      }
    }
  }

  onRunDone(e) {
    this.finishedAt = e.time;
    this.setRunStatus(e.cancelled ? "cancelled" : e.ok ? "done" : "failed");
    if (!e.ok && !e.cancelled) {
      const failed = [...this.nodes.values()].filter((s) => s.state === "failed").map((s) => s.id);
      banner(failed.length ? `Failed: ${failed.join(", ")}` : "The run failed.", "error");
    }
  }

  setRunStatus(status) { this.status = status; setStatus(status); }

  async onStreamEnd() {
    // The stream ended: the job finished (the server closed it), or the server went away.
    try {
      const job = await getJson(`/jobs/${enc(this.job)}`);
      if (this.offline) { this.offline = false; banner(this.bannerText || ""); }
      this.files = job.files || [];
      if (FINISHED.has(job.status)) {
        this.source.close();
        this.setRunStatus(job.status);
        if (job.status === "cancelled" && this.startedAt == null) banner("The job was cancelled before it ran.");
        if (job.error && job.status === "failed" && !this.finishedAt) banner(job.error, "error");
        this.schedule();
      } else if (this.source.readyState === EventSource.CLOSED) {
        setTimeout(() => this.listen(), 1000);
      }
    } catch (err) {
      this.offline = true;
      banner(err.kind === "offline" ? "Lost the connection to the server; reconnecting…" : err.message, "error");
      if (this.source.readyState === EventSource.CLOSED) setTimeout(() => this.listen(), 2000);
    }
  }

  tick() {
    const now = Date.now() / 1000;
    if (this.startedAt != null) {
      $("#clock").textContent = seconds((this.finishedAt || now) - this.startedAt);
    }
    for (const s of this.nodes.values()) if (s.state === "running") this.dirty.add(s.id);
    this.schedule();
  }

  // --- drawing: at most once per frame ---

  schedule() {
    if (this.frame == null) this.frame = requestAnimationFrame(() => { this.frame = null; this.render(); });
  }

  render() {
    const now = Date.now() / 1000;
    for (const id of this.dirty) {
      const s = this.state(id);
      const g = this.boxes && this.boxes.get(id);
      if (g) {
        g.setAttribute("class", `node ${s.state}${id === this.selected ? " selected" : ""}`);
        const elapsed = s.seconds != null ? s.seconds : s.started != null ? now - s.started : null;
        g.querySelector("text.time").textContent = s.state === "cached" ? "cached" : seconds(elapsed);
        const bar = g.querySelector("rect.bar");
        const full = Number(g.querySelector("rect.bar-bg").getAttribute("width"));
        const part = s.max ? Math.min(1, s.value / s.max) : s.state === "running" ? 0 : s.state === "waiting" ? 0 : 1;
        bar.setAttribute("width", String(full * part));
      }
      if (this.hasCard(s)) this.updateCard(s, now);
    }
    this.dirty.clear();
  }

  hasCard(s) {
    return s.card || s.preview || s.message || s.images.length || s.history || Object.keys(s.series).length
      || s.state === "running" || s.id === this.selected;
  }

  card(s) {
    if (!s.card) {
      s.card = el("section", { class: "card", "data-node": s.id, onclick: () => this.select(s.id) },
        el("h3", {}, el("span", { text: s.id }), el("span", { class: "type", text: s.type }), el("span", { class: "time" })),
        el("div", { class: "progress" }, el("div")),
        el("div", { class: "metrics" }),
        el("div", { class: "reason" }),
        el("div", { class: "preview" }),
        el("div", { class: "chart" }),
        el("div", { class: "message" }),
        el("div", { class: "outputs" }));
      this.cards.append(s.card);
    }
    return s.card;
  }

  updateCard(s, now) {
    const card = this.card(s);
    card.className = `card ${s.state}${s.id === this.selected ? " selected" : ""}`;
    // A card with nothing to show (a node that ran without a bar) goes once the node is done.
    card.hidden = !(s.preview || s.message || s.images.length || s.history || Object.keys(s.series).length
      || s.state === "running" || s.id === this.selected);
    const elapsed = s.seconds != null ? s.seconds : s.started != null ? now - s.started : null;
    $(".time", card).textContent = `${s.state}${elapsed != null ? " · " + seconds(elapsed) : ""}`;
    const progress = $(".progress", card);
    progress.hidden = s.value == null;
    if (s.value != null) $(".progress div", card).style.width = `${s.max ? Math.min(100, (100 * s.value) / s.max) : 100}%`;
    const metrics = Object.entries(s.metrics).map(([k, v]) => `${k} ${typeof v === "number" ? v.toPrecision(4) : v}`);
    $(".metrics", card).textContent = [s.value != null ? `${s.value}${s.max ? " / " + s.max : ""}` : "", ...metrics]
      .filter(Boolean).join(" · ");
    $(".reason", card).textContent = s.reason;
    this.updatePreview(s, $(".preview", card));
    this.updateChart(s, $(".chart", card));
    const message = $(".message", card);
    if (s.message && !message.firstChild) {
      message.append(el("div", { text: s.message }));
      if (s.traceback) message.append(el("details", {}, el("summary", { text: "traceback" }), el("pre", { text: s.traceback })));
    }
    const outputs = $(".outputs", card);
    if (s.images.length && outputs.childElementCount !== s.images.length) {
      outputs.replaceChildren(...s.images.map((name) => this.image(name, `output ${name}`)));
    }
  }

  updatePreview(s, box) {
    if (!s.preview) return;
    const url = fileUrl(this.job, s.preview.split("?")[0]) + "?" + s.preview.split("?")[1];
    const img = box.querySelector("img");
    if (img && img.dataset.src === url) return;
    const fresh = this.image(s.preview.split("?")[0], "preview", url);
    box.replaceChildren(fresh);
  }

  image(name, alt, url) {
    const src = url || fileUrl(this.job, name);
    const img = el("img", { alt, "data-src": src });
    img.addEventListener("error", () => img.replaceWith(el("div", { class: "missing", text: `${alt}: the file is not available` })));
    img.src = src;
    return img;
  }

  updateChart(s, box) {
    if (typeof Chart === "undefined") return;
    const fromHistory = s.history != null;
    const source = fromHistory ? historySeries(s.history) : s.series;
    const names = Object.keys(source);
    if (!names.length) return;
    if (!s.chart || s.chartFromHistory !== fromHistory) {
      if (s.chart) s.chart.destroy();
      const canvas = el("canvas");
      box.replaceChildren(canvas);
      s.chart = new Chart(canvas, {
        type: "line",
        data: { datasets: names.map((name, i) => ({ label: name, data: [], borderWidth: 1.5, pointRadius: 0,
          borderColor: PALETTE[i % PALETTE.length], yAxisID: i === 0 ? "y" : "y" })) },
        options: { animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
          scales: { x: { type: "linear", title: { display: true, text: fromHistory ? "step" : "progress" } },
                    y: { type: allPositive(source) ? "logarithmic" : "linear" } },
          plugins: { legend: { labels: { boxWidth: 10 } } } },
      });
      s.chartFromHistory = fromHistory;
    }
    const now = Date.now();
    if (s.chartDrawn && now - s.chartDrawn < 500 && !fromHistory) return;
    s.chartDrawn = now;
    s.chart.data.datasets.forEach((d) => { d.data = source[d.label] || []; });
    s.chart.update("none");
  }
}

const PALETTE = ["#2f6fde", "#d23b2f", "#2c9b45", "#e08a1e", "#7b4bc4", "#1a9a8c"];

function historySeries(history) {
  const keys = Object.keys(history);
  const xKey = keys.find((k) => ["step", "generation", "epoch", "iteration"].includes(k));
  const out = {};
  for (const k of keys) {
    if (k === xKey || k === "stage") continue;
    out[k] = history[k].map((y, i) => ({ x: xKey ? history[xKey][i] : i + 1, y }));
  }
  return out;
}

function allPositive(series) {
  return Object.values(series).every((points) => points.every((p) => p.y > 0));
}

// --- which page ----------------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", () => {
  const path = location.pathname;
  if (path.startsWith("/view/")) {
    new RunView(decodeURIComponent(path.slice("/view/".length))).start();
  } else {
    jobsPage();
  }
});
