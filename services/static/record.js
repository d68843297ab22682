// The record forms themselves: open a partnership (lifecycle page), and on a partnership's
// page log a contact, signal interest, record a joint activity, evaluate (against the
// criteria catalogue when there is one), segment, transfer, change stage, and correct or
// retract an observation recorded earlier. Built with forms.js from the contract.
"use strict";

// Set by the server or the service, never by this form.
const NOT_ASKED = new Set(["occurred_at", "command_id", "on_behalf_of", "expected_version", "partnership_id", "type", "skipped"]);
const LABELS = {
  "partner.name": "Partner's name", "partner.kind": "Kind of partner", "partner.roles": "Roles", "partner.domains": "Web domains",
  owner_unit: "Owner unit", participants: "Participants", effort_minutes: "Effort (minutes)", our_effort_hours: "Our effort (hours)",
  their_effort_hours: "Their effort (hours)", occurred_at: "When it happened", now: "Importance now", future: "Importance in future",
  "stage_changed.reason": "Reason (a short code)", "ownership_transferred.reason": "Why", "ownership_transferred.steward": "New steward",
  "ownership_transferred.owner_unit": "New owner unit", strength: "Strength", event_id: "Event",
};
const HINTS = {
  participants: "Names, separated by commas.", "partner.domains": "Optional: e.g. example.fi, separated by commas.",
  occurred_at: "Leave empty for now (your local time).", strength: "1 weak, 2 clear, 3 strong.",
  "stage_changed.reason": "Lower case, digits and _ . -, e.g. agreed_priority.",
};
const pick = (table, type, name) => table[`${type}.${name}`] ?? table[name];
const sentence = (name) => words(name).replace(/^./, (c) => c.toUpperCase());

// The fields of a command, in the contract's order, with nested objects (the partner)
// spread out; when it happened last.
function commandFields(schema, type, formId, prefix = "", node = schema, required = node.required || []) {
  const fields = [];
  for (const [name, raw] of Object.entries(node.properties || {})) {
    if (!prefix && NOT_ASKED.has(name)) continue;
    const full = prefix + name;
    const child = resolve(schema, raw);
    if (child.type === "object" && child.properties) {
      fields.push(...commandFields(schema, type, formId, `${full}.`, child, child.required || []));
      continue;
    }
    fields.push(field(formId, {
      name: full, node: child, items: resolve(schema, child.items), required: required.includes(name),
      label: pick(LABELS, type, full) ?? sentence(name), hint: pick(HINTS, type, full),
    }));
  }
  if (!prefix && schema.properties.occurred_at) {
    fields.push(field(formId, { name: "occurred_at", node: resolve(schema, schema.properties.occurred_at), label: LABELS.occurred_at, hint: HINTS.occurred_at }));
  }
  return fields;
}

const FACTOR_NAMES = { 0.1: "poor", 1: "adequate", 10: "excellent" };
const factorOption = (v) => `${FACTOR_NAMES[v] || v} (${v})`;

// Scores: one per criterion of the catalogue in force; without a catalogue, free factors.
function factorFields(formId, factors, criteria) {
  const node = { enum: factors };
  if (criteria) {
    return criteria.map((c) => field(formId, { name: `factors.${c.name}`, node, label: words(c.name), hint: c.description, optionLabel: factorOption, blank: "not scored" }));
  }
  const rows = [1, 2, 3].map((n) => [
    field(formId, { name: `factor${n}.name`, node: { type: "string" }, label: `Factor ${n}` }),
    field(formId, { name: `factor${n}.score`, node, label: `Factor ${n} score`, optionLabel: factorOption, blank: "—" }),
  ]).flat();
  // The API knows them as one map, factors: {name: score}; its errors name "factors".
  const all = { name: "factors", wrapper: el("div", { class: "factors" }, ...rows.map((f) => f.wrapper)), error: rows[0].error,
    controls: rows[0].controls, hintId: undefined,
    read: () => Object.fromEntries([1, 2, 3].map((n) => [rows[2 * n - 2].read(), rows[2 * n - 1].read()]).filter(([k, v]) => k && v !== undefined)) };
  return [all];
}

const recorded = (answer, body) => `Recorded: ${words(body.type)}, event #${answer.version}.`;

function partnershipForm(id, schemaOf, [formId, type, title, submit], criteria) {
  const schema = schemaOf(type);
  let fields = commandFields(schema, type, formId);
  if (type === "evaluated") {
    const at = fields.findIndex((f) => f.name === "factors");
    fields.splice(at, 1, ...factorFields(formId, contract.outcome_factors, criteria));
  }
  return recordForm({ id: formId, title, submit, type, fields, path: () => `/v1/partnerships/${id}/events`, done: recorded });
}

const PARTNERSHIP_FORMS = [
  ["contact", "contact_logged", "Log a contact", "Log the contact"],
  ["interest", "interest_signalled", "Signal interest", "Record the interest"],
  ["activity", "joint_activity_recorded", "Record a joint activity", "Record the activity"],
  ["evaluate", "evaluated", "Evaluate", "Record the evaluation"],
  ["segment", "segmented", "Segment", "Record the segment"],
  ["transfer", "ownership_transferred", "Transfer ownership", "Transfer"],
  ["stage", "stage_changed", "Change stage", "Change the stage"],
];

function readOnly(id) {
  return el("section", { id, class: "record-area" }, el("p", { class: "who", id: "read-only" },
    "This session only reads. To record from here, sign in with a token that has the events:write scope."));
}

async function recordOnce(build) {
  return section("record", writes() ? build : readOnly);
}

async function partnershipForms(id) {
  const forms = await contractOf();
  const catalogue = (await api("/v1/projections/organisation/criteria")).catalogue;
  const schemaOf = (type) => forms.commands[type];
  const built = PARTNERSHIP_FORMS.map((f) => partnershipForm(id, schemaOf, f, catalogue?.criteria));
  return el("section", { id: "record", class: "record-area", "aria-labelledby": "record-heading" },
    el("h1", { id: "record-heading" }, "Record"),
    el("p", { class: "who" }, catalogue ? `Evaluations score the ${catalogue.criteria.length} criteria of catalogue version ${catalogue.version}.` : "No criteria catalogue yet: evaluations name their own factors."),
    el("div", { class: "forms" }, ...built, correctionForm(id, forms)));
}

async function openForm() {
  const forms = await contractOf();
  const schema = forms.commands.partnership_opened;
  const form = recordForm({
    id: "open", title: "Open a partnership", submit: "Open the partnership", type: "partnership_opened",
    fields: commandFields(schema, "partnership_opened", "open"), path: () => "/v1/partnerships",
    done: (answer, body) => [`Opened ${body.partner.name}. `, el("a", { href: `/dashboard/partnership.html?id=${answer.id}`, id: "opened" }, "Go to its page")],
  });
  return el("section", { id: "record", class: "record-area" }, el("div", { class: "forms" }, form));
}
