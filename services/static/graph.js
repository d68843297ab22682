// The networks page's graph: a drawing of the networks linked by the partners they share
// (GET /v1/graph?detail=networks) and a small trend per network over the last eight
// quarters (GET /v1/graph/measures). Inline SVG built here; no style attributes (the
// CSP refuses them), so every look comes from classes in dashboard.css.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

// A circle, in the answer's order (by name, then id): the same graph is always drawn the
// same way, and a new network only moves the ones after it. One network sits in the middle.
function circleLayout(nodes, width, height) {
  const cx = width / 2, cy = height / 2, r = Math.min(width, height) / 2 - 60;
  if (nodes.length === 1) return new Map([[nodes[0].id, { x: cx, y: cy }]]);
  return new Map(nodes.map((n, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
    return [n.id, { x: cx + r * Math.cos(angle), y: cy + r * Math.sin(angle) }];
  }));
}

// Who each network shares members with, in words: the nodes' accessible names.
function sharedWith(graph, names) {
  const pairs = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const s of graph.shared_members) {
    const [a, b] = s.networks;
    pairs.get(a)?.push(`${names.get(b)} (${s.count})`);
    pairs.get(b)?.push(`${names.get(a)} (${s.count})`);
  }
  return pairs;
}

function graphDrawing(graph) {
  const nodes = graph.nodes.filter((n) => n.kind === "network");
  const names = new Map(nodes.map((n) => [n.id, n.name]));
  const width = 640, height = 420;
  const at = circleLayout(nodes, width, height);
  const heaviest = Math.max(1, ...graph.shared_members.map((s) => s.count));
  const svg = svgEl("svg", { id: "network-graph", class: "graph", viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": `The networks we are in (${nodes.length}) linked by the partners they share (${graph.shared_members.length} pairs)` });
  for (const s of graph.shared_members) {
    const [a, b] = s.networks.map((id) => at.get(id));
    if (!a || !b) continue;
    // Thicker for more shared partners; the count is written on the link as well.
    svg.append(svgEl("line", { class: "link", x1: a.x, y1: a.y, x2: b.x, y2: b.y, "stroke-width": 1.5 + 6 * s.count / heaviest,
      "aria-hidden": "true" }));
    svg.append(svgEl("text", { class: "link-count", x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, "text-anchor": "middle",
      "aria-hidden": "true" }, String(s.count)));
  }
  const shares = sharedWith(graph, names);
  for (const n of nodes) {
    const { x, y } = at.get(n.id);
    const linked = shares.get(n.id);
    const label = `${n.name}: ${n.members} members; ` + (linked.length ? `shares partners with ${linked.join(", ")}` : "shares no partners");
    const below = y >= height / 2;
    svg.append(svgEl("g", { class: "node", tabindex: 0, role: "img", "aria-label": label, "data-network": n.id },
      svgEl("title", {}, label),
      svgEl("circle", { cx: x, cy: y, r: 10 + Math.min(n.members, 30) }),
      svgEl("text", { x, y: below ? y + 26 + Math.min(n.members, 30) : y - 16 - Math.min(n.members, 30), "text-anchor": "middle" }, n.name)));
  }
  return svg;
}

// The drawing's text alternative: every pair of networks that share partners.
function pairsTable(graph) {
  const names = new Map(graph.nodes.map((n) => [n.id, n.name]));
  const table = el("table", { id: "graph-pairs" }, el("caption", {}, "Networks that share partners"),
    el("tr", {}, ...["network", "network", "partners in both"].map((h) => el("th", { scope: "col" }, h))));
  for (const s of graph.shared_members) {
    table.append(el("tr", {}, el("td", {}, names.get(s.networks[0]) || s.networks[0]),
      el("td", {}, names.get(s.networks[1]) || s.networks[1]), el("td", {}, String(s.count))));
  }
  if (!graph.shared_members.length) table.append(el("tr", {}, el("td", { colspan: 3 }, "No two networks share a partner.")));
  return table;
}

// A sparkline of one measure across the quarters: a gap where it was not one of ours.
function sparkline(values, label, max) {
  const width = 160, height = 36, pad = 4;
  const top = max ?? Math.max(1e-9, ...values.filter((v) => v != null));
  const x = (i) => pad + (width - 2 * pad) * (values.length > 1 ? i / (values.length - 1) : 0.5);
  const y = (v) => height - pad - (height - 2 * pad) * (top > 0 ? v / top : 0);
  const svg = svgEl("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  svg.append(svgEl("title", {}, label));
  let run = [];
  const flush = () => {
    if (run.length > 1) svg.append(svgEl("polyline", { points: run.join(" ") }));
    if (run.length === 1) svg.append(svgEl("circle", { cx: run[0].split(",")[0], cy: run[0].split(",")[1], r: 2 }));
    run = [];
  };
  values.forEach((v, i) => { if (v == null) flush(); else run.push(`${x(i)},${y(v)}`); });
  flush();
  return svg;
}

const fixed = (v, digits = 2) => (v == null ? "–" : Number(v).toFixed(digits));

function trendsTable(measures) {
  const quarters = measures.quarters.map((q) => q.quarter);
  const span = quarters.length ? `${quarters[0]} to ${quarters[quarters.length - 1]}` : "no quarters";
  const table = el("table", { id: "trends" }, el("caption", {}, `Trend per network, ${span}`),
    el("tr", {}, ...["network", "members", "eigenvector centrality", "now: members, eigenvector, brokers"].map((h) => el("th", { scope: "col" }, h))));
  for (const n of measures.networks) {
    const members = n.trend.map((t) => (t ? t.members : null));
    const eigen = n.trend.map((t) => (t ? t.eigenvector : null));
    const last = n.trend[n.trend.length - 1];
    const said = (values, digits) => values.map((v, i) => `${quarters[i]} ${v == null ? "–" : fixed(v, digits)}`).join(", ");
    table.append(el("tr", { "data-network": n.network_id },
      el("th", { scope: "row" }, n.name || n.network_id),
      el("td", {}, sparkline(members, `${n.name}: members by quarter: ${said(members, 0)}`)),
      el("td", {}, sparkline(eigen, `${n.name}: eigenvector centrality by quarter: ${said(eigen, 3)}`, 1)),
      el("td", {}, last ? `${last.members}, ${fixed(last.eigenvector, 3)}, ${last.brokers}` : "not one of ours now")));
  }
  return table;
}

// The graph's part of the networks page, from answers already fetched.
function graphSection(graph, measures) {
  return el("section", { id: "graph-section", "aria-labelledby": "graph-heading" },
    el("h1", { id: "graph-heading" }, "Networks and the partners they share"),
    el("p", { class: "who" }, "A link joins two networks that share partners; its number says how many. Tab to a network to hear its links."),
    el("figure", { id: "graph-figure" }, graphDrawing(graph)), pairsTable(graph),
    el("h1", {}, "Trend per network"),
    el("p", { class: "who" }, "Members and eigenvector centrality (0 to 1, on the graph of networks and partners) at each quarter's end."),
    trendsTable(measures));
}
