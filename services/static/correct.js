// Correcting the record without rewriting it: pick an observation from the partnership's
// history (a contact, interest signal, joint activity or evaluation) and retract it
// (event_retracted) or say what it should have said (event_corrected: only the fields
// given change). The fields offered are the ones the contract lets a correction change.
"use strict";

const correction = { form: null, event: null, action: null, reason: null, box: null, changes: [], events: new Map(), listed: "", shownFor: undefined };

function asRecorded(event, name) {
  const value = name === "occurred_at" ? event.occurred_at : event.data[name];
  if (value == null) return "nothing";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k} ${v}`).join(", ");
  return String(value);
}

// An evaluation's factors are one map: a correction gives all of it, the ones left
// "unchanged" as recorded.
function factorChanges(event) {
  const recorded = event.data.factors || {};
  const rows = Object.entries(recorded).map(([name, score]) => field("correct", {
    name: `changes.factors.${name}`, node: { enum: contract.outcome_factors }, label: `Score for ${words(name)}`,
    hint: `Recorded: ${factorOption(score)}.`, optionLabel: factorOption, blank: "unchanged",
  }));
  if (!rows.length) return [];
  const names = Object.keys(recorded);
  const all = {
    name: "changes.factors", wrapper: el("div", { class: "factors" }, ...rows.map((f) => f.wrapper)), error: rows[0].error,
    controls: rows[0].controls, hintId: rows[0].hintId,
    read: () => (rows.some((f) => f.read() !== undefined)
      ? Object.fromEntries(names.map((n, i) => [n, rows[i].read() ?? recorded[n]])) : undefined),
  };
  return [all];
}

// The fields of the chosen event's type, each empty ("unchanged") with what was recorded.
function showChanges() {
  const event = correction.events.get(correction.event.controls[0].value) || null;
  if (event === correction.shownFor) return;
  correction.shownFor = event;
  const schema = event ? contract.commands[event.type] : null;
  const allowed = event ? contract.correctable[event.type] : [];
  const names = event ? [...Object.keys(schema.properties).filter((n) => allowed.includes(n) && n !== "occurred_at"), "occurred_at"] : [];
  correction.changes = names.flatMap((name) => name === "factors" ? factorChanges(event) : [field("correct", {
    name: `changes.${name}`, node: resolve(schema, schema.properties[name]), items: resolve(schema, resolve(schema, schema.properties[name]).items),
    label: LABELS[name] ?? sentence(name), blank: "unchanged",
    hint: `Recorded: ${asRecorded(event, name)}.${name === "participants" ? " Names, separated by commas." : ""}`,
  })]);
  const legend = el("legend", {}, event ? `Corrected values for event #${event.version} (leave the rest empty)` : "Corrected values: choose an event first");
  correction.box.replaceChildren(legend, ...correction.changes.map((f) => f.wrapper));
  formState.get(correction.form).fields = [correction.event, correction.action, correction.reason, ...correction.changes];
  retracting();
}

// Retracting needs no new values: their fields are hidden and not sent.
const retracting = () => {
  const retract = correction.action.controls[0].value === "event_retracted";
  correction.box.hidden = retract;
  return retract;
};

function correctionForm(id, forms) {
  const retract = forms.commands.event_retracted;
  correction.event = field("correct", { name: "event_id", node: { enum: [] }, required: true, label: LABELS.event_id, blank: "Choose an event…",
    hint: "A contact, interest signal, joint activity or evaluation recorded here (the numbers are those of the history)." });
  correction.action = field("correct", { name: "action", node: { enum: ["event_corrected", "event_retracted"] }, label: "Action", noBlank: true,
    optionLabel: (v) => (v === "event_corrected" ? "correct it" : "retract it (it no longer counts)") });
  correction.reason = field("correct", { name: "reason", node: resolve(retract, retract.properties.reason), required: true, label: "Why" });
  correction.box = el("fieldset", { id: "correct-changes", class: "changes" });
  correction.form = recordForm({
    id: "correct", title: "Correct or retract an event", submit: "Record the correction", fields: [],
    more: [correction.box], type: () => correction.action.controls[0].value, path: () => `/v1/partnerships/${id}/events`,
    active: () => [correction.event, correction.reason, ...(retracting() ? [] : correction.changes)],
    done: (answer, body) => `Recorded: ${words(body.type)} of ${body.event_id}, event #${answer.version}.`,
    after: () => { correction.shownFor = undefined; showChanges(); },
  });
  // The order of the form: event, action, reason, then the new values.
  correction.form.insertBefore(el("div", { class: "correct-head" }, correction.event.wrapper, correction.action.wrapper, correction.reason.wrapper), correction.box);
  correction.event.controls[0].addEventListener("change", showChanges);
  correction.action.controls[0].addEventListener("change", retracting);
  showChanges();
  return correction.form;
}

// The observations that can still be corrected, refreshed with the history; the choice
// someone made stays chosen (unless that event was retracted meanwhile).
function correctable(events) {
  if (!correction.form) return;
  const retracted = new Set(events.filter((e) => e.type === "event_retracted").map((e) => e.data.event_id));
  const corrected = new Set(events.filter((e) => e.type === "event_corrected").map((e) => e.data.event_id));
  const open = events.filter((e) => e.type in contract.correctable && !retracted.has(e.event_id));
  const listed = open.map((e) => `${e.event_id}${corrected.has(e.event_id) ? "*" : ""}`).join(" ");
  correction.events = new Map(open.map((e) => [e.event_id, e]));
  if (listed === correction.listed) return;
  correction.listed = listed;
  const select = correction.event.controls[0];
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "Choose an event…"), ...open.map((e) =>
    el("option", { value: e.event_id }, `#${e.version} ${words(e.type)}, ${e.occurred_at.slice(0, 10)}${corrected.has(e.event_id) ? " (corrected)" : ""}`)));
  select.value = correction.events.has(chosen) ? chosen : "";
  correction.shownFor = undefined; // what was recorded may have been corrected: show it again
  showChanges();
}
