// The network plan on the networks page (GET /v1/network-plan, JSON): the candidates to
// join, each recommendation beside the decision in force (overrides marked), the impact
// of leaving and the notes for mandate owners. The same plan downloads as Markdown.
"use strict";

const headRow = (...names) => el("tr", {}, ...names.map((h) => el("th", { scope: "col" }, h)));
const number = (v) => (v == null ? "–" : String(Number(v.toFixed(3))));
const day = (iso) => (iso ? iso.slice(0, 10) : "–");

function toJoinTable(candidates) {
  if (!candidates.length) return el("p", { id: "to-join", class: "who" }, "No candidate networks are being considered.");
  const table = el("table", { id: "to-join" },
    el("caption", {}, "Ranked by priority = purpose fit × readiness"),
    headRow("rank", "candidate", "purposes", "purpose fit", "readiness", "priority", "missing", "partly met", "decision"));
  for (const c of candidates) {
    const decision = c.decision ? `${c.decision.decision} (${c.decision.decider}, ${day(c.decision.decided_at)})` : "–";
    table.append(el("tr", { "data-candidate": c.candidate_id },
      el("td", {}, String(c.rank)), el("td", {}, c.name), el("td", {}, c.purposes.join(", ")),
      el("td", {}, number(c.purpose_fit)), el("td", {}, number(c.readiness)), el("td", {}, number(c.priority)),
      el("td", { class: c.missing.length ? "missing" : "" }, c.missing.join(", ") || "–"),
      el("td", {}, c.partly_met.join(", ") || "–"), el("td", {}, decision)));
  }
  return table;
}

function decisionsTable(networks) {
  const table = el("table", { id: "decisions" },
    headRow("network", "recommendation", "decision", "decided by", "rationale", "decided on"));
  for (const n of networks) {
    const recommended = n.recommendation + (n.reason ? ` (${n.reason})` : "");
    const d = n.decision;
    // An override says so in words, not by colour alone.
    const decision = d ? el("td", {}, d.decision, n.overrides ? el("strong", { class: "override" }, " overrides") : "") : el("td", {}, "–");
    table.append(el("tr", { class: n.overrides ? "overridden" : "", "data-network": n.network_id },
      el("th", { scope: "row" }, n.name), el("td", { class: `rec-${n.recommendation}` }, recommended), decision,
      el("td", {}, d ? d.decider : "–"), el("td", {}, d ? d.rationale : "–"), el("td", {}, d ? day(d.decided_at) : "–")));
  }
  return table;
}

function leavingList(impacts) {
  if (!impacts.length) return el("p", { id: "leaving", class: "who" }, "No network is recommended or decided to leave.");
  return el("ul", { id: "leaving" }, ...impacts.map((i) => {
    const cut = i.sole_members.map((m) => m.partner_name || m.partnership_id);
    return el("li", { "data-network": i.network_id }, el("strong", {}, i.name), ` (${i.basis}): frees ${number(i.effort_hours)} h of our effort a year; `,
      cut.length ? `the only network we share with ${cut.length} partnership${cut.length === 1 ? "" : "s"}: ${cut.join(", ")}` : "no partnership shares only this network with us", ".");
  }));
}

function mandateNotes(networks) {
  const noted = networks.filter((n) => n.mandate_note);
  if (!noted.length) return el("p", { id: "mandate-notes", class: "who" }, "Nothing for a mandate owner to decide.");
  return el("ul", { id: "mandate-notes" }, ...noted.map((n) => el("li", { "data-network": n.network_id }, el("strong", {}, n.name), `: ${n.mandate_note}`)));
}

function planSection(plan) {
  return el("section", { id: "plan-section", "aria-labelledby": "plan-heading" },
    el("h1", { id: "plan-heading" }, `The network plan as of ${day(plan.as_of)}`),
    el("h2", {}, "To join"), toJoinTable(plan.to_join),
    el("h2", {}, "Recommendation and decision"), decisionsTable(plan.networks),
    el("h2", {}, "Impact of leaving"), leavingList(plan.leaving_impact),
    el("h2", {}, "Mandate notes"), mandateNotes(plan.networks));
}
