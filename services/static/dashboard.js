// Verkosto dashboards: plain JavaScript and inline SVG, served by the API itself (no CDN).
"use strict";

// No token lives here: the page was opened with a session cookie (HttpOnly, set when
// signing in), and every fetch to this same origin carries it.
const params = new URLSearchParams(location.search);

function signIn() {
  location.assign(`/dashboard/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
}

// Navigating away aborts whatever is still loading; a page restored from the back/forward
// cache starts afresh (its refresh loop ended with the abort).
const navigation = new AbortController();
addEventListener("pagehide", () => navigation.abort());
addEventListener("pageshow", (event) => { if (event.persisted) location.reload(); });

// Conditional reads: the last answer and its ETag per address. A refresh that finds
// nothing changed gets 304 (no body) and reuses the answer; the page then keeps what it
// shows instead of rebuilding it.
const known = new Map();
let refresh = { changed: true };
let shown = false;

async function api(path, accept) {
  const key = `${accept || "json"} ${path}`;
  const previous = known.get(key);
  const headers = { Accept: accept || "application/json" };
  if (previous) headers["If-None-Match"] = previous.etag;
  // "no-store": the browser's cache neither keeps these answers nor revalidates on its
  // own, so the 304 reaches this code instead of a silent copy.
  const response = await fetch(path, { credentials: "same-origin", headers, cache: "no-store", signal: navigation.signal });
  if (response.status === 401) signIn(); // the session ended (signed out, expired or revoked)
  if (response.status === 304 && previous) return previous.body;
  if (!response.ok) throw new Error(`${response.status} ${path}`);
  const body = accept === "text/markdown" ? await response.text() : await response.json();
  refresh.changed = true;
  const etag = response.headers.get("ETag");
  if (etag) known.set(key, { etag, body });
  return body;
}

// Whether this refresh may keep the page as it is: everything it read was unchanged.
const unchanged = () => shown && !refresh.changed;

// The server's clock, learnt from its answers' as_of: polls name their moment, "now"
// rounded up to the minute by the server's clock, so an unchanged answer is a 304 the
// server gives without computing it again. Up, not down: what happened in the last
// minute is included; time-driven flags may run up to a minute early.
let skew = null;
function learnClock(body) {
  if (skew === null && body && body.as_of) skew = Date.parse(body.as_of) - Date.now();
}
function minute(path) {
  if (skew === null) return path; // the first read asks for "now" and learns the clock
  const at = new Date(Math.ceil((Date.now() + skew) / 60000) * 60000).toISOString().replace(".000Z", "Z");
  return path + (path.includes("?") ? "&" : "?") + `as_of=${encodeURIComponent(at)}`;
}

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "class" ? (node.className = v) : node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
};

function fresh(body) {
  document.querySelector(".fresh").textContent = `projection at position ${body.position} · ${new Date().toLocaleTimeString()}`;
}

// Follows the projections without a reload: the next refresh is scheduled only once the
// previous one has answered, so a slow server never has two refreshes of a page at once.
// poke() asks for one now (a "more" button, a date picker) without overlapping either:
// during a refresh it only asks for another right after.
const INTERVAL_MS = 3000;
let timer = 0, running = false, again = false, poked = false;
let current = null;
async function run() {
  clearTimeout(timer);
  running = true;
  refresh = { changed: poked };
  poked = false;
  try {
    await current();
    shown = true;
  } catch (error) {
    if (navigation.signal.aborted) return;
    shown = false; // the next answer is drawn again, even if unchanged
    document.querySelector("main").replaceChildren(el("p", { class: "error" }, `Cannot load: ${error.message}.`));
  } finally {
    running = false;
  }
  if (navigation.signal.aborted) return;
  if (again) { again = false; run(); } else timer = setTimeout(run, INTERVAL_MS);
}
function live(render) {
  current = render;
  run();
}
function poke() {
  poked = true;
  if (running) again = true; else run();
}

const LEVELS = ["++", "+", "-", "--"];
const expanded = new Map(); // portfolio cell → pages of further members asked for

function withCursor(link, cursor) {
  const url = new URL(link, location.origin);
  url.searchParams.set("cursor", cursor);
  return url.pathname + url.search;
}

const board = { pages: 1 }; // lifecycle pages asked for (a "more" button adds one)

const pages = {
  async portfolio() {
    const body = await api(minute("/v1/projections/portfolio"));
    learnClock(body);
    // A cell's further members, as far as asked; each page continues the cell's link.
    const further = new Map();
    for (const c of body.cells) {
      let link = c.more ?? null;
      const members = [];
      for (let i = 0; link && i < (expanded.get(c.cell) || 0); i++) {
        const page = await api(link);
        members.push(...page.members);
        link = page.next_cursor ? withCursor(link, page.next_cursor) : null;
      }
      further.set(c.cell, { members, link });
    }
    fresh(body);
    if (unchanged()) return;
    const cell = (now, future) => body.cells.find((c) => c.now === now && c.future === future);
    const table = el("table", { class: "matrix", id: "matrix" },
      el("tr", {}, el("th", {}, "now ↓ / future →"), ...LEVELS.slice().reverse().map((f) => el("th", {}, f))));
    for (const now of LEVELS) {
      const row = el("tr", {}, el("th", {}, now));
      for (const future of LEVELS.slice().reverse()) {
        const c = cell(now, future);
        const rising = LEVELS.indexOf(future) < LEVELS.indexOf(now);
        const rest = further.get(c.cell);
        const td = el("td", { class: rising ? "rising" : "", "data-cell": c.cell },
          el("div", { class: "count" }, String(c.count)),
          el("div", { class: "who" }, [...c.members, ...rest.members].map((m) => m.partner_name).join(", ")));
        if (rest.link) {
          const more = el("button", { class: "more", type: "button" }, `more (${c.count - c.members.length - rest.members.length})`);
          more.addEventListener("click", () => { expanded.set(c.cell, (expanded.get(c.cell) || 0) + 1); poke(); });
          td.append(more);
        }
        row.append(td);
      }
      table.append(row);
    }
    const drift = el("table", { id: "drift" }, el("tr", {}, el("th", {}, "quarter"), el("th", {}, "partner"), el("th", {}, "from"), el("th", {}, "to")));
    for (const move of body.drift.slice(-40).reverse()) drift.append(el("tr", {}, el("td", {}, move.quarter), el("td", {}, move.partner_name), el("td", {}, move.from || "—"), el("td", {}, move.to)));
    const rising = body.rising_count ?? body.rising.length;
    // Comparable outcomes need everyone scored on the same criteria: say who is not.
    const cover = body.evaluation_coverage;
    const coverage = cover ? el("p", { class: "who", id: "coverage" },
      `${cover.never_evaluated.count} of ${cover.partnerships} never evaluated` +
      (cover.catalogue_version ? `; ${cover.not_under_current.count} not under the current criteria` : "; no criteria catalogue yet") + ".") : "";
    document.querySelector("main").replaceChildren(el("h1", {}, "Segment portfolio"), table,
      el("p", { class: "who" }, `${rising} partners sit in the highlighted cells, where the future outranks now (the board flags a rise only on evidence).`), coverage, el("h1", {}, "Drift by quarter"), drift);
    // The answer lists the first moves only; say how many there were in all.
    const moved = body.drift_count ?? body.drift.length;
    if (moved > body.drift.length) drift.after(el("p", { class: "who", id: "drift-count" }, `${body.drift.length} of ${moved} moves shown.`));
  },

  async lifecycle() {
    // The first pages, as many as asked for, each continuing the previous one's cursor.
    // An answer without next_cursor (a server before paging) is the whole board.
    const rows = [];
    let first = null, cursor = null;
    for (let i = 0; i < board.pages; i++) {
      const body = await api(minute("/v1/projections/lifecycle" + (cursor ? `?cursor=${encodeURIComponent(cursor)}` : "")));
      first ??= body;
      learnClock(body);
      rows.push(...body.partnerships);
      cursor = body.next_cursor ?? null;
      if (!cursor) break;
    }
    fresh(first);
    if (unchanged()) return;
    const stages = ["analyse", "prioritise", "maintain", "manage", "wind_down"];
    const columns = el("div", { class: "board", id: "board" });
    for (const stage of stages) {
      const column = el("div", { class: "column", "data-stage": stage }, el("strong", {}, stage.replace("_", " ")));
      for (const p of rows.filter((x) => x.stage === stage)) {
        column.append(el("div", { class: "card" },
          el("a", { href: `/dashboard/partnership.html?id=${p.partnership_id}` }, p.partner_name),
          el("div", { class: "who" }, `${p.steward} · cell ${p.segment ? `${p.segment.now}/${p.segment.future}` : "not segmented"} · last contact ${p.last_contact_at ? p.last_contact_at.slice(0, 10) : "never"} · trust ${p.trust ?? "–"}`),
          // Each flag is judged against the card's cell; its reasons and evidence on hover.
          ...p.flags.map((f) => el("span", { class: "flag", title: [...f.reasons, ...(f.evidence?.length ? [`evidence: ${f.evidence.length} event(s)`] : [])].join("; ") }, f.name))));
      }
      columns.append(column);
    }
    const status = el("p", { class: "who", id: "board-status" }, `${rows.length} partnerships shown${cursor ? ", more by name" : ""}.`);
    if (cursor) {
      const more = el("button", { id: "more", type: "button" }, "Show more");
      more.addEventListener("click", () => { board.pages += 1; poke(); });
      status.append(" ", more);
    }
    document.querySelector("main").replaceChildren(el("h1", {}, "Lifecycle board"), columns, status);
  },

  async partnership() {
    const id = params.get("id") || "";
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new Error("the address needs ?id=<partnership id>");
    const asOf = document.querySelector("#as-of")?.value;
    const [trust, owners, history, state] = await Promise.all([
      api(`/v1/projections/trust/${id}`), api(`/v1/projections/partnerships/${id}/owners`),
      api(`/v1/projections/partnerships/${id}/history`),
      api(`/v1/projections/partnerships/${id}` + (asOf ? `?as_of=${asOf}T23:59:59Z` : "")),
    ]);
    fresh(trust);
    if (unchanged()) return;
    const picker = el("input", { type: "date", id: "as-of" });
    if (asOf) picker.value = asOf;
    picker.addEventListener("change", poke);
    const main = document.querySelector("main");
    main.replaceChildren(
      el("h1", {}, `${state.partner.name} — ${state.stage}, steward ${state.steward}`),
      el("label", {}, "State as of ", picker), chart(trust.points),
      el("div", { class: "legend" }, ...series.map(swatch)),
      el("h1", {}, "Ownership"), ownersTable(owners.owners),
      el("h1", {}, "Evidence and history" + (asOf ? ` up to ${asOf}` : "")),
      historyTable(history.events.filter((e) => !asOf || e.occurred_at.slice(0, 10) <= asOf)));
  },

  async networks() {
    const body = await api(minute("/v1/projections/networks"));
    learnClock(body);
    fresh(body);
    if (unchanged()) return;
    const table = el("table", { id: "networks" }, el("tr", {}, ...["network", "purposes", "role", "activity", "effort h (12 m)", "efficiency", "best before", "recommendation"].map((h) => el("th", {}, h))));
    for (const n of body.networks) {
      table.append(el("tr", {}, el("td", {}, n.name), el("td", {}, n.purposes.join(", ")), el("td", {}, n.role), el("td", {}, n.activity),
        el("td", {}, String(n.effort_hours)), el("td", {}, n.efficiency == null ? "–" : String(n.efficiency)), el("td", {}, n.best_before || "–"),
        el("td", { class: `rec-${n.recommendation}`, title: n.explanation }, n.recommendation + (n.reason ? ` (${n.reason})` : ""))));
    }
    const download = el("button", { id: "download" }, "Download the network plan (Markdown)");
    download.addEventListener("click", async () => {
      const text = await api("/v1/network-plan", "text/markdown");
      const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/markdown" })), download: "network-plan.md" });
      link.click();
    });
    document.querySelector("main").replaceChildren(el("h1", {}, "Networks and the network plan"), table, el("p", {}, download));
  },
};

const series = [
  { key: "trust", label: "trust", color: "#0b6e99" },
  { key: "inbound_interest", label: "their interest", color: "#2e7d32" },
  { key: "outbound_interest", label: "our interest", color: "#8e24aa" },
  { key: "attention", label: "attention", color: "#b3541e" },
];

// Colours through the CSSOM, never a style attribute (the CSP refuses those).
function swatch(s) {
  const span = el("span", {}, `■ ${s.label}`);
  span.style.color = s.color;
  return span;
}

function chart(points) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart"); svg.setAttribute("id", "trust-chart");
  svg.setAttribute("viewBox", "0 0 1000 260"); svg.setAttribute("preserveAspectRatio", "none");
  if (!points.length) return svg;
  const times = points.map((p) => Date.parse(p.at));
  const t0 = Math.min(...times), t1 = Math.max(...times) || t0 + 1;
  const x = (t) => 20 + 960 * (t - t0) / Math.max(t1 - t0, 1);
  const y = (v) => 240 - 220 * v;
  // Phase bands behind the lines: where the relationship stood.
  points.forEach((p, i) => {
    const band = document.createElementNS(ns, "rect");
    const end = i + 1 < points.length ? x(times[i + 1]) : 980;
    band.setAttribute("x", x(times[i])); band.setAttribute("width", Math.max(end - x(times[i]), 1));
    band.setAttribute("y", 20); band.setAttribute("height", 220);
    band.setAttribute("fill", { interest: "#f5f5f5", trust: "#e8f4fa", commitment: "#e5f3e7" }[p.phase]);
    svg.append(band);
  });
  for (const s of series) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.map((p, i) => `${x(times[i])},${y(p[s.key])}`).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", s.color); line.setAttribute("stroke-width", 2);
    svg.append(line);
  }
  points.forEach((p, i) => {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("class", "point"); dot.setAttribute("cx", x(times[i])); dot.setAttribute("cy", y(p.trust)); dot.setAttribute("r", 4);
    dot.setAttribute("fill", "#0b6e99");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${p.at.slice(0, 10)} trust ${p.trust} (${p.phase}) moved by ${p.moved_by.join(", ")}`;
    dot.append(title); svg.append(dot);
  });
  return svg;
}

function ownersTable(owners) {
  const table = el("table", { id: "owners" }, el("tr", {}, ...["from", "until", "unit", "steward", "reason", "recorded"].map((h) => el("th", {}, h))));
  for (const o of owners) table.append(el("tr", {}, el("td", {}, o.valid_from.slice(0, 10)), el("td", {}, o.valid_until ? o.valid_until.slice(0, 10) : "now"),
    el("td", {}, o.owner_unit), el("td", {}, o.steward), el("td", {}, o.reason), el("td", {}, o.recorded_at.slice(0, 10))));
  return table;
}

function historyTable(events) {
  const table = el("table", { id: "history" }, el("tr", {}, ...["#", "type", "occurred", "recorded", "by"].map((h) => el("th", {}, h))));
  for (const e of events) table.append(el("tr", {}, el("td", {}, String(e.version)), el("td", {}, e.type), el("td", {}, e.occurred_at.slice(0, 10)),
    el("td", {}, e.recorded_at.slice(0, 10)), el("td", {}, e.actor)));
  return table;
}

live(pages[document.body.dataset.page]);
