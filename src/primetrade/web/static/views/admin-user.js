// /admin/users/<id>: one account, its controls, and a read-only list of its tasks.

import { api } from "../api.js";
import { navigate } from "../router.js";
import { append, h, showError } from "../ui.js";
import {
  formatDate,
  formatDateTime,
  formatDue,
  isOverdue,
  PRIORITY_LABEL,
  STATUS_LABEL,
} from "../format.js";
import { activeBadge, activeButton, deleteButton, roleSelect } from "./admin-users.js";

const PAGE_SIZE = 25;

export function adminUserView(main, { params }) {
  document.title = "User · Admin · PrimeTrade Tasks";
  const card = h(
    "section",
    { class: "card user-card", "aria-busy": "true" },
    h("p", { class: "muted" }, "Loading…"),
  );
  const heading = h("h1", { tabindex: "-1" }, "User");
  append(
    main,
    h("p", { class: "breadcrumb" }, h("a", { href: "/admin/users" }, "← All users")),
    h("div", { class: "page-head" }, heading),
    card,
    taskSection(params.id),
  );
  const draw = (user) => {
    heading.textContent = user.full_name || user.email;
    document.title = `${heading.textContent} · Admin · PrimeTrade Tasks`;
    card.removeAttribute("aria-busy");
    const focused = card.contains(document.activeElement)
      ? document.activeElement.dataset.focus
      : null;
    card.replaceChildren(
      h(
        "dl",
        { class: "details" },
        detail("Email", user.email),
        detail("Role", roleSelect(user, draw)),
        detail("Status", activeBadge(user)),
        detail("Joined", formatDateTime(user.created_at)),
        detail("Last changed", formatDateTime(user.updated_at)),
      ),
      h(
        "div",
        { class: "card-actions" },
        activeButton(user, draw),
        deleteButton(user, () => navigate("/admin/users")),
      ),
    );
    if (focused) card.querySelector(`[data-focus="${focused}"]`)?.focus();
  };
  api
    .get(`/admin/users/${encodeURIComponent(params.id)}`)
    .then(draw)
    .catch((error) => {
      card.replaceChildren(
        h(
          "p",
          {},
          error.status === 404 ? "There is no such user." : "The account could not be loaded.",
        ),
      );
      showError(error);
    });
}

function detail(term, value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, value));
}

function taskSection(ownerId) {
  const body = h("tbody");
  const count = h("span", { class: "count" });
  const table = h(
    "table",
    { class: "data-table" },
    h("caption", { class: "visually-hidden" }, "Their tasks"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Title", "Status", "Priority", "Due", "Updated"].map((label) =>
          h("th", { scope: "col" }, label),
        ),
      ),
    ),
    body,
  );
  const empty = h("p", { class: "muted", hidden: true }, "No tasks.");
  const more = h("button", { type: "button", class: "btn load-more", hidden: true }, "Load more");
  let cursor = null;
  const load = async () => {
    const query = {
      owner_id: ownerId,
      limit: PAGE_SIZE,
      cursor,
      include_total: cursor ? null : true,
    };
    try {
      const page = await api.get("/admin/tasks", { query });
      body.append(...page.items.map(taskRow));
      if (page.total !== undefined && page.total !== null) count.textContent = String(page.total);
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
      empty.hidden = body.children.length > 0;
      table.hidden = body.children.length === 0;
    } catch (error) {
      showError(error);
    }
  };
  more.addEventListener("click", load);
  load();
  return h(
    "section",
    { class: "owner-tasks", "aria-labelledby": "owner-tasks-title" },
    h("h2", { id: "owner-tasks-title" }, "Tasks ", count),
    h(
      "p",
      { class: "muted" },
      "Read-only: what this person sees in their list (archived tasks excluded).",
    ),
    // Focusable, so that a keyboard can scroll it where it is wider than the screen.
    h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Their tasks", tabindex: "0" },
      table,
    ),
    empty,
    more,
  );
}

function taskRow(task) {
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, task.title),
    h(
      "td",
      {},
      h("span", { class: `status-pill status-${task.status}` }, STATUS_LABEL[task.status]),
    ),
    h(
      "td",
      {},
      h("span", { class: `priority priority-${task.priority}` }, PRIORITY_LABEL[task.priority]),
    ),
    h(
      "td",
      { class: isOverdue(task) ? "overdue" : "" },
      task.due_at ? formatDue(task.due_at) : "—",
    ),
    h("td", {}, formatDate(task.updated_at)),
  );
}
