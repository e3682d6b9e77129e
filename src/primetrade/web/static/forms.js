// Form fields, and the API's problems shown next to the fields they concern.

import { clear, h } from "./ui.js";

let fieldCounter = 0;

/** A labelled control with a hint and a slot for its error; `control` is built for it. */
export function field({ label, name, type = "text", hint, control, ...attributes }) {
  const id = `f-${name}-${++fieldCounter}`;
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const input =
    control ??
    h(type === "textarea" ? "textarea" : "input", {
      id,
      name,
      ...(type === "textarea" ? {} : { type }),
      ...attributes,
    });
  input.id = id;
  input.name = name;
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: id }, label),
    input,
    hint && h("p", { class: "hint", id: hintId }, hint),
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

export function select(options, value, attributes = {}) {
  return h(
    "select",
    attributes,
    options.map(([optionValue, label]) =>
      h("option", { value: optionValue, selected: optionValue === value }, label),
    ),
  );
}

/** A form's error summary: placed first in the form, filled by showFormErrors. */
export function errorSummary() {
  return h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
}

export function clearFormErrors(form) {
  for (const message of form.querySelectorAll(".field-error")) {
    message.hidden = true;
    message.textContent = "";
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
  }
  const summary = form.querySelector(".error-summary");
  if (summary) clear(summary).hidden = true;
}

/**
 * Put a problem's messages next to the fields they concern and list them in the summary.
 * A 422's `errors[].loc` names the field (["title"], ["tags", 3], ["body", "title"]);
 * `aliases` maps API field names to the form's where they differ.
 */
export function showFormErrors(form, error, { aliases = {} } = {}) {
  clearFormErrors(form);
  const items = [];
  for (const { loc = [], msg } of error.errors ?? []) {
    const name = fieldName(loc, aliases);
    const wrapper = name && form.querySelector(`.field[data-field="${name}"]`);
    if (!wrapper) {
      items.push(h("li", {}, msg));
      continue;
    }
    const message = wrapper.querySelector(".field-error");
    const text = sentence(msg);
    message.textContent = message.textContent ? `${message.textContent} ${text}` : text;
    message.hidden = false;
    const control = wrapper.querySelector("input, textarea, select");
    control.setAttribute("aria-invalid", "true");
    items.push(
      h(
        "li",
        {},
        h(
          "a",
          {
            href: `#${control.id}`,
            onClick: (event) => {
              event.preventDefault();
              control.focus();
            },
          },
          `${wrapper.querySelector("label").textContent}: ${text}`,
        ),
      ),
    );
  }
  if (items.length === 0) items.push(h("li", {}, error.detail || error.title));
  const summary = form.querySelector(".error-summary");
  clear(summary, h("p", {}, h("strong", {}, summaryTitle(error))), h("ul", {}, items));
  summary.hidden = false;
  summary.focus();
}

function fieldName(loc, aliases) {
  const name = loc.find((part) => typeof part === "string" && part !== "body" && part !== "query");
  return name === undefined ? null : (aliases[name] ?? name);
}

function summaryTitle(error) {
  const count = error.errors?.length ?? 0;
  if (count > 1) return `Please fix ${count} problems`;
  return error.status === 422 ? "Please fix this problem" : error.title;
}

function sentence(text) {
  const trimmed = String(text).replace(/^Value error, /, "");
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1) + (/[.!?]$/.test(trimmed) ? "" : ".");
}

/** Disable a form's submit button while `work` runs. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
