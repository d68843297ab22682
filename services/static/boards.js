// The organisation-wide pages: the segment portfolio, the lifecycle board (with the form
// that opens a partnership) and the networks.
"use strict";

const LEVELS = ["++", "+", "-", "--"];
const expanded = new Map(); // portfolio cell → pages of further members asked for

function withCursor(link, cursor) {
  const url = new URL(link, location.origin);
  url.searchParams.set("cursor", cursor);
  return url.pathname + url.search;
}

const board = { pages: 1 }; // lifecycle pages asked for (a "more" button adds one)

pages.portfolio = async function portfolio() {
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
  show(el("h1", {}, "Segment portfolio"), table,
    el("p", { class: "who" }, `${rising} partners sit in the highlighted cells, where the future outranks now (the board flags a rise only on evidence).`), coverage, el("h1", {}, "Drift by quarter"), drift);
  // The answer lists the first moves only; say how many there were in all.
  const moved = body.drift_count ?? body.drift.length;
  if (moved > body.drift.length) drift.after(el("p", { class: "who", id: "drift-count" }, `${body.drift.length} of ${moved} moves shown.`));
};

pages.lifecycle = async function lifecycle() {
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
  await recordOnce(openForm); // record.js: built once, below the board
  if (unchanged()) return;
  const stages = ["analyse", "prioritise", "maintain", "manage", "wind_down"];
  const columns = el("div", { class: "board", id: "board" });
  for (const stage of stages) {
    const column = el("div", { class: "column", "data-stage": stage }, el("h2", {}, stage.replace("_", " ")));
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
  show(el("h1", {}, "Lifecycle board"), columns, status);
};

let networksDrawn = null;

pages.networks = async function networks() {
  // The plan has an ETag; the graph and its measures do not, so the page compares what it
  // would draw with what it drew, and keeps the drawing (and the focus in it) if the same.
  // The measures name their moment `to`, the rest `as_of`: the same minute for all.
  const [body, plan, graph, measures] = await Promise.all([
    api(minute("/v1/projections/networks")), api(minute("/v1/network-plan")),
    api(minute("/v1/graph?detail=networks")), api(minute("/v1/graph/measures").replace("?as_of=", "?to=")),
  ]);
  learnClock(body);
  fresh(body);
  const drawn = JSON.stringify([body.networks, plan.networks, plan.to_join, plan.leaving_impact, graph.nodes,
    graph.shared_members, measures.quarters.map((q) => q.quarter), measures.networks]);
  if (shown && drawn === networksDrawn) return;
  networksDrawn = drawn;
  const table = el("table", { id: "networks" }, el("tr", {}, ...["network", "purposes", "role", "activity", "effort h (12 m)", "efficiency", "best before", "recommendation"].map((h) => el("th", {}, h))));
  for (const n of body.networks) {
    table.append(el("tr", {}, el("td", {}, n.name), el("td", {}, n.purposes.join(", ")), el("td", {}, n.role), el("td", {}, n.activity),
      el("td", {}, String(n.effort_hours)), el("td", {}, n.efficiency == null ? "–" : String(n.efficiency)), el("td", {}, n.best_before || "–"),
      el("td", { class: `rec-${n.recommendation}`, title: n.explanation }, n.recommendation + (n.reason ? ` (${n.reason})` : ""))));
  }
  const download = el("button", { id: "download", type: "button" }, "Download the network plan (Markdown)");
  download.addEventListener("click", async () => {
    const text = await api("/v1/network-plan", "text/markdown");
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/markdown" })), download: "network-plan.md" });
    link.click();
  });
  // graph.js and plan.js build the drawing, the trends and the plan's sections.
  show(el("h1", {}, "Networks and the network plan"), table, el("p", {}, download),
    planSection(plan), graphSection(graph, measures));
};
