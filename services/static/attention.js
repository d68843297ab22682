// Attention this week, the dashboards' home: what a steward should do, most urgent first,
// each item with its reason, due date and evidence, linked to the partnership page.
"use strict";

let attentionDrawn = null;

// "me" is the person the signed-in token belongs to; ?steward= names anyone else.
const steward = () => (params.get("steward") || "me").trim() || "me";

function stewardFilter(id) {
  // A plain GET form: Enter reloads this page for the steward named.
  const input = el("input", { id: "steward", name: "steward", type: "text", autocomplete: "off", "aria-describedby": "steward-hint" });
  input.value = steward();
  return el("form", { id, class: "filter", method: "get", action: "/dashboard/attention.html" },
    el("label", { for: "steward" }, "Steward"), input,
    el("button", { type: "submit" }, "Show"),
    el("span", { class: "who", id: "steward-hint" }, "“me” is the person your token belongs to."));
}

const KIND_LABELS = {
  handover_pending: "handover pending",
  dormant_worth_waking: "dormant, worth waking",
  contact_due: "contact due",
  segmentation_missing: "segmentation missing",
  wind_down_decision_pending: "wind-down decision pending",
  evaluation_due: "evaluation due",
  segmentation_first_guess: "first segmentation to revisit",
};

function evidenceList(item) {
  // Evidence names events as "<partnership id>:<version>": the version is what the
  // partnership page's history lists.
  if (!item.evidence.length) return "–";
  return item.evidence.map((e) => `#${e.split(":").pop()}`).join(", ");
}

pages.attention = async function attention() {
  await section("steward-filter", stewardFilter, true);
  const path = `/v1/attention?steward=${encodeURIComponent(steward())}&limit=50`;
  let body;
  try {
    body = await api(minute(path));
  } catch (error) {
    if (error.status !== 400) throw error;
    // Most often a token issued without a person, asked about "me": say what to do.
    attentionDrawn = null;
    show(el("h1", {}, "Attention this week"), el("p", { class: "error", id: "attention-problem" }, error.message));
    return;
  }
  learnClock(body);
  fresh(body);
  // This list comes without an ETag: kept as drawn while its items stay the same, so a
  // refresh never takes the focus from a link someone has tabbed to.
  const drawn = JSON.stringify([steward(), body.total, body.items]);
  if (shown && drawn === attentionDrawn) return;
  attentionDrawn = drawn;
  const table = el("table", { id: "attention" },
    el("tr", {}, ...["#", "partner", "what", "why", "due", "evidence"].map((h) => el("th", { scope: "col" }, h))));
  for (const item of body.items) {
    table.append(el("tr", { class: item.overdue ? "overdue" : "" },
      el("td", {}, String(item.priority)),
      el("td", {}, el("a", { href: `/dashboard/partnership.html?id=${item.partnership_id}` }, item.partner_name)),
      el("td", {}, KIND_LABELS[item.kind] || item.kind.replaceAll("_", " ")),
      el("td", {}, item.reason),
      el("td", {}, item.overdue ? `overdue (${item.due})` : item.due),
      el("td", {}, evidenceList(item))));
  }
  const whose = steward() === "me" ? "you" : steward();
  const count = el("p", { class: "who", id: "attention-count" },
    body.total ? `${body.count} of ${body.total} items for ${whose}, most urgent first.` : `Nothing needs ${whose} this week.`);
  show(el("h1", {}, "Attention this week"), count, body.items.length ? table : "");
};
