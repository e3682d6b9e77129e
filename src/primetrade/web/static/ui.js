// DOM building blocks shared by every view: elements, icons, toasts, dialogs, form fields.
// Elements are built with createElement, never from HTML strings, so text from the API can
// never become markup (and nothing here needs an inline style the CSP would refuse).

const SVG_NS = "http://www.w3.org/2000/svg";
const PROPERTIES = new Set(["value", "checked", "selected", "indeterminate", "open"]);

/** An element: h("button", {class: "btn", onClick}, "Save"). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  append(element, children);
  return element;
}

/** An SVG element (charts, icons). */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setProps(element, attributes);
  append(element, children);
  return element;
}

function setProps(element, props) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (PROPERTIES.has(key)) {
      element[key] = value;
    } else {
      element.setAttribute(key === "className" ? "class" : key, value === true ? "" : value);
    }
  }
}

export function append(parent, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

/**
 * Put `fresh` where `old` is; the keyboard focus, if it was inside, goes to the control with
 * the same `data-focus` name, so redrawing a row never throws a keyboard user back to the top.
 */
export function swap(old, fresh) {
  const key = old.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
  old.replaceWith(fresh);
  if (key) fresh.querySelector(`[data-focus="${key}"]`)?.focus();
  return fresh;
}

export function clear(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

const ICONS = {
  plus: "M12 5v14M5 12h14",
  edit: "M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  archive: "M3 4h18v4H3zM5 8v12h14V8M10 12h4",
  restore: "M3 12a9 9 0 1 0 3-6.7L3 8M3 3v5h5",
  search: "M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM21 21l-5-5",
  close: "M6 6l12 12M18 6L6 18",
  list: "M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01",
  board: "M4 4h5v16H4zM10 4h5v10h-5zM16 4h4v7h-4z",
  chart: "M4 20V10M10 20V4M16 20v-7M22 20H2",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
  shield: "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z",
  logout: "M15 4h4v16h-4M10 17l5-5-5-5M15 12H3",
  check: "M5 12l5 5L20 7",
  calendar: "M4 6h16v14H4zM4 10h16M8 3v4M16 3v4",
  alert:
    "M12 9v4M12 17h.01M10.3 3.9L1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z",
  filter: "M3 5h18l-7 8v6l-4 2v-8z",
  arrows: "M7 17L17 7M17 7H9M17 7v8",
};

export function icon(name, label) {
  const attributes = { viewBox: "0 0 24 24", class: "icon", focusable: "false" };
  if (label) Object.assign(attributes, { role: "img", "aria-label": label });
  else attributes["aria-hidden"] = "true";
  return svg("svg", attributes, svg("path", { d: ICONS[name] }));
}

// --- Announcements and toasts ------------------------------------------------------------

/** Read a sentence to screen readers without showing it. */
export function announce(text) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  // A new text node after a tick: some screen readers skip a region whose text is replaced
  // synchronously with the same words.
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** A toast: {kind: "info"|"success"|"error", title, action: {label, run}}. */
export function toast(message, { kind = "info", title, action, timeout } = {}) {
  // Outside an open modal dialog everything is inert, so a toast then goes inside it.
  const dialogs = document.querySelectorAll("dialog[open] .dialog-toasts");
  const region = dialogs[dialogs.length - 1] ?? document.getElementById("toasts");
  const close = () => item.remove();
  const item = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("div", { class: "toast-body" }, title && h("strong", {}, title), h("span", {}, message)),
    action &&
      h(
        "button",
        { type: "button", class: "btn btn-small", onClick: () => (close(), action.run()) },
        action.label,
      ),
    h(
      "button",
      { type: "button", class: "icon-btn", "aria-label": "Dismiss", onClick: close },
      icon("close"),
    ),
  );
  region.append(item);
  setTimeout(close, timeout ?? (kind === "error" || action ? 10_000 : 5_000));
  return close;
}

/** Show what went wrong with a call: the problem's title and detail, never a stack. */
export function showError(error) {
  // A 401 has already sent the page to sign-in, with its own message.
  if (error?.status === 401) return;
  if (error?.status === undefined) console.error(error);
  const title = error?.title ?? "Something went wrong";
  const detail = error?.detail || (error?.status === undefined ? "Please try again." : "");
  toast(detail, { kind: "error", title });
}

// --- Dialogs -----------------------------------------------------------------------------

/**
 * A modal <dialog>: the browser keeps focus inside it and Escape closes it. Resolves with
 * the returnValue once closed, and removes itself.
 */
export function openDialog({ title, body, actions = [], className = "", labelId }) {
  const headingId = labelId ?? `dialog-${Math.random().toString(36).slice(2)}`;
  const dialog = h(
    "dialog",
    { class: `dialog ${className}`, "aria-labelledby": headingId },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: headingId }, title),
      h(
        "button",
        {
          type: "button",
          class: "icon-btn",
          "aria-label": "Close",
          onClick: () => dialog.close("cancel"),
        },
        icon("close"),
      ),
    ),
    body,
    actions.length > 0 && h("div", { class: "dialog-actions" }, actions),
    h("div", { class: "toasts dialog-toasts", "aria-live": "polite" }),
  );
  document.body.append(dialog);
  const closed = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue);
    });
  });
  dialog.showModal();
  return { dialog, closed };
}

/** Ask before something that cannot be undone; resolves true when confirmed. */
export async function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  const confirmButton = h(
    "button",
    {
      type: "button",
      class: danger ? "btn btn-danger" : "btn btn-primary",
      onClick: () => dialog.close("confirm"),
    },
    confirmLabel,
  );
  const cancelButton = h(
    "button",
    { type: "button", class: "btn", onClick: () => dialog.close("cancel") },
    "Cancel",
  );
  const { dialog, closed } = openDialog({
    title,
    body: h("p", { class: "dialog-text" }, message),
    actions: [cancelButton, confirmButton],
    className: "dialog-small",
  });
  cancelButton.focus();
  return (await closed) === "confirm";
}

/** Run `fn` once input has paused for `wait` ms. */
export function debounce(fn, wait) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
