// Pages for a path nobody serves and for a page this account may not see.

import { append, h, icon } from "../ui.js";

function problemPage(main, { title, text, code }) {
  document.title = `${title} · PrimeTrade Tasks`;
  append(
    main,
    h(
      "section",
      { class: "empty-page" },
      h(
        "span",
        { class: "empty-icon", "aria-hidden": "true" },
        icon(code === 403 ? "shield" : "search"),
      ),
      h("p", { class: "eyebrow" }, `Error ${code}`),
      h("h1", { tabindex: "-1" }, title),
      h("p", { class: "muted" }, text),
      h("a", { href: "/tasks", class: "btn btn-primary" }, "Back to your tasks"),
    ),
  );
}

export function notFoundView(main) {
  problemPage(main, {
    code: 404,
    title: "Page not found",
    text: "There is nothing at this address.",
  });
}

export function forbiddenView(main) {
  problemPage(main, {
    code: 403,
    title: "Admins only",
    text: "This page is for administrators. Your account can't open it.",
  });
}
