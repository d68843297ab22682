// The record forms' machinery. Fields are built from the contract itself (GET /dashboard/
// forms.json: each command's JSON Schema), so options and limits are the API's; every
// form posts JSON with the session's CSRF proof and shows the API's own errors (RFC 9457
// problem details) next to the fields they name. Native controls with labels throughout;
// Enter submits; the browser's own validation is off (novalidate) so that the API is the
// one judge and its messages the ones shown.
"use strict";

let contract = null;
async function contractOf() {
  if (!contract) {
    const response = await fetch("/dashboard/forms.json", { credentials: "same-origin", signal: navigation.signal });
    if (!response.ok) throw new ApiError(response.status, "/dashboard/forms.json", await problemOf(response));
    contract = await response.json();
  }
  return contract;
}

// The synchronizer token the server put in this page (it also signs the sign-out form).
const proof = () => document.querySelector("form.sign-out input[name=proof]").value;

// A schema node with its $ref and "or null" resolved.
function resolve(schema, node) {
  while (node && (node.$ref || node.anyOf)) {
    node = node.$ref ? schema.$defs[node.$ref.split("/").pop()] : node.anyOf.find((n) => n.type !== "null");
  }
  return node || {};
}

const words = (value) => String(value).replaceAll("_", " ");
const LONG_TEXT = 1000; // a longer limit than this is prose: a text area

// One field: its label, control(s), hint and the place for its error. `read` gives the
// value for the request body, or undefined to leave the field out.
function field(formId, spec) {
  const { name, node, label, hint, required, blank } = spec;
  const id = `${formId}-${name.replaceAll(".", "-")}`;
  const hintId = hint ? `${id}-hint` : undefined;
  const described = { "aria-describedby": hintId };
  const error = el("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const hintEl = hint ? el("p", { class: "hint", id: hintId }, hint) : "";
  const items = node.type === "array" ? spec.items : null;
  if (items?.enum) { // several of a few values: checkboxes in a group
    const boxes = items.enum.map((v) => el("input", { type: "checkbox", id: `${id}-${v}`, name, value: v, ...described }));
    const wrapper = el("fieldset", { class: "field choices", "data-field": name },
      el("legend", {}, label), ...boxes.map((b) => el("label", { class: "choice" }, b, ` ${words(b.value)}`)), hintEl, error);
    const read = () => { const on = boxes.filter((b) => b.checked).map((b) => b.value); return on.length || required ? on : undefined; };
    return { name, wrapper, controls: boxes, error, hintId, read };
  }
  let control, read;
  if (node.enum) {
    // Nothing is chosen for anyone: a required choice starts blank too, and the API says so if it stays blank.
    const first = spec.noBlank ? [] : [["", blank || (required ? "Choose…" : "—")]];
    const options = [...first, ...node.enum.map((v) => [String(v), spec.optionLabel ? spec.optionLabel(v) : words(v)])];
    control = el("select", { id, name, ...described }, ...options.map(([v, text]) => el("option", { value: v }, text)));
    read = () => control.value === "" ? undefined : (typeof node.enum[0] === "number" ? Number(control.value) : control.value);
  } else if (node.type === "array") { // several free values: one line, separated by commas
    control = el("input", { id, name, type: "text", autocomplete: "off", ...described });
    read = () => { const list = control.value.split(",").map((s) => s.trim()).filter(Boolean); return list.length || required ? list : undefined; };
  } else if (node.type === "integer" || node.type === "number") {
    control = el("input", { id, name, type: "number", min: node.minimum, max: node.maximum, step: node.type === "integer" ? 1 : "any", ...described });
    read = () => control.value === "" ? undefined : Number(control.value);
  } else if (node.format === "date-time") {
    control = el("input", { id, name, type: "datetime-local", ...described });
    read = () => control.value === "" ? undefined : new Date(control.value).toISOString();
  } else {
    const long = (node.maxLength ?? 0) >= LONG_TEXT;
    control = el(long ? "textarea" : "input", { id, name, ...(long ? { rows: 3 } : { type: "text", autocomplete: "off" }), ...described });
    read = () => control.value.trim() === "" ? undefined : control.value;
  }
  if (required) control.setAttribute("aria-required", "true");
  const wrapper = el("div", { class: "field", "data-field": name }, el("label", { for: id }, label), control, hintEl, error);
  return { name, wrapper, controls: [control], error, hintId, read };
}

function setPath(body, path, value) {
  const parts = path.split(".");
  let node = body;
  for (const part of parts.slice(0, -1)) node = node[part] ??= {};
  node[parts.at(-1)] = value;
}

// The API names a field "body.<command type>.<field>[.<index>...]": the form's field is
// the one named so, or the first within the part named (the error names a whole group).
function fieldFor(fields, type, path) {
  let rest = String(path || "").replace(/^body\.?/, "");
  if (rest.startsWith(`${type}.`)) rest = rest.slice(type.length + 1);
  if (!rest) return null;
  const within = fields.filter((f) => rest === f.name || rest.startsWith(`${f.name}.`));
  if (within.length) return within.sort((a, b) => b.name.length - a.name.length)[0];
  return fields.find((f) => f.name.startsWith(`${rest}.`)) || null;
}

// Refusals (409 and kin) name their subject in their details: the field to point at.
const REFUSAL_FIELDS = {
  occurred_in_future: () => ["occurred_at", "changes.occurred_at"],
  occurred_before_start: () => ["occurred_at", "changes.occurred_at"],
  stage_out_of_order: () => ["occurred_at"],
  illegal_stage_transition: () => ["stage"],
  unknown_event: () => ["event_id"],
  already_retracted: () => ["event_id"],
  not_correctable: (p) => (p.fields ? p.fields.map((f) => `changes.${f}`) : ["event_id"]),
  invalid_outcome_factor: (p) => Object.keys(p.invalid || {}).map((n) => `factors.${n}`).concat(["factors"]),
  criteria_not_scored: (p) => (p.missing || []).map((n) => `factors.${n}`).concat(["factors"]),
  unknown_criterion: (p) => (p.unknown || []).map((n) => `factors.${n}`).concat(["factors"]),
  nothing_changed: (p) => ["stage", "steward", "changes"].filter((k) => k in p || k === "changes"),
};

// Each form's fields and error summary, beside the element: a form's own properties are
// shadowed by its controls' names (a field named "summary" would hide such a property).
const formState = new WeakMap();

function clearErrors(form) {
  const { fields, summary } = formState.get(form);
  for (const f of fields) {
    f.error.hidden = true;
    f.error.textContent = "";
    for (const c of f.controls) {
      c.removeAttribute("aria-invalid");
      f.hintId ? c.setAttribute("aria-describedby", f.hintId) : c.removeAttribute("aria-describedby");
    }
  }
  summary.textContent = "";
}

function mark(f, message) {
  f.error.textContent = f.error.textContent ? `${f.error.textContent}; ${message}` : message;
  f.error.hidden = false;
  for (const c of f.controls) {
    c.setAttribute("aria-invalid", "true");
    c.setAttribute("aria-describedby", [f.hintId, f.error.id].filter(Boolean).join(" "));
  }
}

function showProblem(form, type, problem, status) {
  const { fields, summary } = formState.get(form);
  const marked = new Set();
  const elsewhere = [];
  for (const e of problem?.errors || []) {
    const f = fieldFor(fields, type, e.field);
    f ? (mark(f, e.message), marked.add(f)) : elsewhere.push(`${e.field}: ${e.message}`);
  }
  if (!problem?.errors && problem?.code in REFUSAL_FIELDS) {
    for (const name of REFUSAL_FIELDS[problem.code](problem)) {
      const f = fieldFor(fields, type, name);
      if (f && !marked.has(f)) { mark(f, problem.detail || problem.title); marked.add(f); break; }
    }
  }
  const what = problem ? `${problem.title}${problem.detail && !marked.size ? `: ${problem.detail}` : ""}` : `The server answered ${status}`;
  summary.textContent = [what, ...elsewhere].join(". ") + ".";
  // Focus goes to the first field in error, in the form's order; else to the summary.
  const first = fields.find((f) => marked.has(f));
  (first ? first.controls[0] : summary).focus();
}

// A form that records one command. `spec`: id, title, submit (button text), fields (from
// field()), path (where to post), type (the command's type, or a function of the form),
// extra (more of the body), active (the fields sent, if not all), done (the success
// message, a string or nodes) and after (what else to do then).
function recordForm(spec) {
  const status = el("p", { class: "status", id: `${spec.id}-status`, role: "status" });
  const summary = el("p", { class: "form-error", id: `${spec.id}-error`, role: "alert", tabindex: "-1" });
  const form = el("form", { id: `form-${spec.id}`, class: "record", novalidate: true, "aria-labelledby": `${spec.id}-heading` },
    el("h2", { id: `${spec.id}-heading` }, spec.title), ...spec.fields.map((f) => f.wrapper), ...(spec.more || []),
    el("button", { type: "submit" }, spec.submit), summary, status);
  formState.set(form, { fields: spec.fields, summary });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const type = typeof spec.type === "function" ? spec.type() : spec.type;
    const body = { type, ...(spec.extra ? spec.extra() : {}) };
    for (const f of spec.active ? spec.active() : formState.get(form).fields) {
      const value = f.read();
      if (value !== undefined) setPath(body, f.name, value);
    }
    status.textContent = "Recording…";
    let response;
    try {
      response = await fetch(spec.path(), {
        method: "POST", credentials: "same-origin", signal: navigation.signal, cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": proof() },
        body: JSON.stringify(body),
      });
    } catch (error) {
      status.textContent = "";
      showProblem(form, type, null, error.message);
      return;
    }
    if (response.status === 401) return signIn();
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      status.textContent = "";
      showProblem(form, type, answer, response.status);
      return;
    }
    form.reset();
    status.replaceChildren(...[spec.done(answer, body)].flat());
    if (spec.after) spec.after(answer);
    poke(); // the page's data again, with what was just recorded
  });
  return form;
}
