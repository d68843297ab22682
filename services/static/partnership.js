// One partnership: its trust over time, owners and history, and (for a session that may
// write) the forms that record what happened in it (record.js).
"use strict";

pages.partnership = async function partnership() {
  const id = params.get("id") || "";
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new Error("the address needs ?id=<partnership id>");
  const asOf = document.querySelector("#as-of")?.value;
  const then = asOf ? `?as_of=${asOf}T23:59:59Z` : "";
  const [trust, owners, history, state, member] = await Promise.all([
    api(`/v1/projections/trust/${id}`), api(`/v1/projections/partnerships/${id}/owners`),
    api(`/v1/projections/partnerships/${id}/history`), api(`/v1/projections/partnerships/${id}` + then),
    api(`/v1/projections/partnerships/${id}/networks` + then),
  ]);
  fresh(trust);
  await recordOnce(() => partnershipForms(id)); // record.js: built once, below the view
  if (unchanged()) return;
  correctable(history.events); // the correction form picks from the history shown
  const picker = el("input", { type: "date", id: "as-of" });
  if (asOf) picker.value = asOf;
  picker.addEventListener("change", poke);
  show(
    el("h1", {}, `${state.partner.name} — ${state.stage}, steward ${state.steward}`),
    el("label", {}, "State as of ", picker), chart(trust.points),
    el("div", { class: "legend" }, ...series.map(swatch)),
    el("h1", {}, "Ownership"), ownersTable(owners.owners),
    el("h1", {}, "Networks" + (asOf ? ` on ${asOf}` : "")), networksList(member.networks),
    el("h1", {}, "Evidence and history" + (asOf ? ` up to ${asOf}` : "")),
    historyTable(history.events.filter((e) => !asOf || e.occurred_at.slice(0, 10) <= asOf)));
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
  svg.setAttribute("role", "img"); svg.setAttribute("aria-label", `Trust, interest and attention over time: ${points.length} points`);
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

// The networks we are in that this partnership is a member of (GET …/networks).
function networksList(networks) {
  if (!networks.length) return el("p", { id: "member-networks", class: "who" }, "In none of our networks.");
  return el("ul", { id: "member-networks" }, ...networks.map((n) => el("li", { "data-network": n.network_id },
    el("strong", {}, n.name), ` — ${n.purposes.join(", ")}; ${n.role}, ${n.activity}; member since ${n.member_since ? n.member_since.slice(0, 10) : "before this was kept"}`)));
}
