// /admin/users: every account, searchable; change a role, (de)activate, delete.

import { api } from "../api.js";
import { navigate } from "../router.js";
import { loadUser, state } from "../state.js";
import {
  announce,
  append,
  confirmDialog,
  debounce,
  h,
  icon,
  showError,
  swap,
  toast,
} from "../ui.js";
import { select } from "../forms.js";
import { formatDate } from "../format.js";
import { updateQuery } from "./filters.js";

const PAGE_SIZE = 25;
const ROLES = [
  ["user", "User"],
  ["admin", "Admin"],
];

export function adminUsersView(main, context) {
  return new UserList(main, context);
}

class UserList {
  users = [];
  cursor = null;
  total = null;
  generation = 0;

  constructor(main, { query }) {
    document.title = "Users · Admin · PrimeTrade Tasks";
    this.search = h("input", {
      type: "search",
      id: "user-search",
      placeholder: "Search by name or email",
      autocomplete: "off",
      maxlength: "200",
    });
    this.role = select([["", "Any role"], ...ROLES], "", { id: "user-role" });
    this.active = select(
      [
        ["", "Any status"],
        ["true", "Active"],
        ["false", "Deactivated"],
      ],
      "",
      { id: "user-active" },
    );
    this.body = h("tbody");
    this.table = h(
      "table",
      { class: "data-table users-table" },
      h("caption", { class: "visually-hidden" }, "Users"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["User", "Role", "Status", "Joined", "Actions"].map((label) =>
            h("th", { scope: "col" }, label),
          ),
        ),
      ),
      this.body,
    );
    this.summary = h("p", { class: "list-summary muted", role: "status" });
    this.more = h(
      "button",
      { type: "button", class: "btn load-more", hidden: true, onClick: () => this.load(false) },
      "Load more",
    );
    this.actions = { changed: (user) => this.changed(user), removed: (user) => this.removed(user) };
    this.listen();
    append(
      main,
      h(
        "div",
        { class: "page-head" },
        h("h1", { tabindex: "-1" }, "Users"),
        h("p", { class: "muted page-note" }, "Manage accounts: roles, access and removal."),
      ),
      this.toolbar(),
      this.summary,
      h("div", { class: "table-wrap" }, this.table),
      this.more,
    );
    this.update({ query });
  }

  toolbar() {
    return h(
      "div",
      { class: "filterbar" },
      h(
        "div",
        { class: "filterbar-row" },
        h(
          "div",
          { class: "search" },
          icon("search"),
          h("label", { for: "user-search", class: "visually-hidden" }, "Search users"),
          this.search,
        ),
        h("div", { class: "inline-field" }, h("label", { for: "user-role" }, "Role"), this.role),
        h(
          "div",
          { class: "inline-field" },
          h("label", { for: "user-active" }, "Status"),
          this.active,
        ),
      ),
    );
  }

  listen() {
    this.search.addEventListener(
      "input",
      debounce(() => updateQuery({ q: this.search.value.trim() }, { replace: true }), 300),
    );
    this.role.addEventListener("change", () => updateQuery({ role: this.role.value }));
    this.active.addEventListener("change", () => updateQuery({ active: this.active.value }));
  }

  /** The URL's query changed (the search, a filter, back/forward). */
  update({ query }) {
    if (document.activeElement !== this.search) this.search.value = query.get("q") ?? "";
    this.role.value = query.get("role") ?? "";
    this.active.value = query.get("active") ?? "";
    this.load(true);
  }

  async load(reset) {
    const ticket = ++this.generation;
    const current = new URLSearchParams(location.search);
    const query = {
      q: current.get("q"),
      role: current.get("role"),
      is_active: current.get("active"),
      limit: PAGE_SIZE,
      include_total: reset || null,
      cursor: reset ? null : this.cursor,
    };
    this.table.setAttribute("aria-busy", "true");
    try {
      const page = await api.get("/admin/users", { query });
      if (ticket !== this.generation) return;
      this.users = reset ? page.items : [...this.users, ...page.items];
      this.cursor = page.next_cursor ?? null;
      this.total = page.total ?? this.total;
      this.draw();
    } catch (error) {
      if (ticket === this.generation) showError(error);
    } finally {
      if (ticket === this.generation) this.table.removeAttribute("aria-busy");
    }
  }

  draw() {
    this.body.replaceChildren(...this.users.map((user) => userRow(user, this.actions)));
    this.more.hidden = !this.cursor;
    this.summary.textContent =
      this.total === 0 ? "No users match." : `${this.total} ${this.total === 1 ? "user" : "users"}`;
  }

  changed(user) {
    this.users = this.users.map((item) => (item.id === user.id ? user : item));
    const old = this.body.querySelector(`tr[data-id="${CSS.escape(user.id)}"]`);
    if (old) swap(old, userRow(user, this.actions));
  }

  removed(user) {
    this.users = this.users.filter((item) => item.id !== user.id);
    this.total -= 1;
    this.draw();
  }
}

function userRow(user, { changed, removed }) {
  const name = user.full_name || user.email;
  return h(
    "tr",
    { dataset: { id: user.id } },
    h(
      "th",
      { scope: "row", class: "user-cell" },
      h("a", { href: `/admin/users/${user.id}`, class: "user-link" }, name),
      user.id === state.user.id && h("span", { class: "badge badge-muted you" }, "You"),
      user.full_name && h("span", { class: "muted user-email" }, user.email),
    ),
    h("td", {}, roleSelect(user, changed)),
    h("td", {}, activeBadge(user)),
    h("td", {}, formatDate(user.created_at)),
    h(
      "td",
      {},
      h("div", { class: "row-actions" }, activeButton(user, changed), deleteButton(user, removed)),
    ),
  );
}

export function activeBadge(user) {
  return h(
    "span",
    { class: `badge ${user.is_active ? "badge-success" : "badge-muted"}` },
    user.is_active ? "Active" : "Deactivated",
  );
}

async function patchUser(user, changes) {
  const updated = await api.patch(`/admin/users/${user.id}`, changes);
  // Your own role or access changed: what this page may show changes with it.
  if (user.id === state.user.id) {
    await loadUser();
    if (state.user.role !== "admin") navigate("/tasks");
  }
  return updated;
}

export function roleSelect(user, changed) {
  const control = select(ROLES, user.role, {
    "aria-label": `Role of ${user.full_name || user.email}`,
    dataset: { focus: "role" },
  });
  control.addEventListener("change", async () => {
    control.disabled = true;
    try {
      const updated = await patchUser(user, { role: control.value });
      announce(`${updated.email} is now ${updated.role === "admin" ? "an admin" : "a user"}.`);
      toast(`${updated.email} is now ${updated.role === "admin" ? "an admin" : "a user"}.`, {
        kind: "success",
      });
      changed(updated);
    } catch (error) {
      control.value = user.role;
      showError(error);
    } finally {
      control.disabled = false;
    }
  });
  return control;
}

export function activeButton(user, changed) {
  const label = user.is_active ? "Deactivate" : "Reactivate";
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      "aria-label": `${label} ${user.email}`,
      dataset: { focus: "active" },
    },
    label,
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const updated = await patchUser(user, { is_active: !user.is_active });
      toast(`${updated.email} is ${updated.is_active ? "active again" : "deactivated"}.`, {
        kind: "success",
      });
      changed(updated);
    } catch (error) {
      button.disabled = false;
      showError(error);
    }
  });
  return button;
}

export function deleteButton(user, removed) {
  const button = h(
    "button",
    {
      type: "button",
      class: "icon-btn icon-btn-danger",
      title: "Delete",
      "aria-label": `Delete ${user.email}`,
    },
    icon("trash"),
  );
  button.addEventListener("click", async () => {
    const confirmed = await confirmDialog({
      title: "Delete this account?",
      message: `${user.email} and all their tasks will be deleted for good. This can't be undone.`,
      confirmLabel: "Delete account",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api.delete(`/admin/users/${user.id}`);
      toast(`${user.email} was deleted.`, { kind: "success" });
      removed(user);
    } catch (error) {
      showError(error);
    }
  });
  return button;
}
