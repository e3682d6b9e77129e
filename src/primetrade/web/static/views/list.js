// /tasks: the task list, sortable by column, paged with "Load more", with quick add.

import { createTask, listTasks } from "../tasks.js";
import { announce, append, h, icon, swap } from "../ui.js";
import {
  formatDate,
  formatDateTime,
  formatDue,
  isOverdue,
  PRIORITY_LABEL,
  STATUS_LABEL,
} from "../format.js";
import {
  activeFilterCount,
  apiQuery,
  clearFilters,
  filterBar,
  syncLayoutLinks,
  updateQuery,
  workspaceHeader,
} from "./filters.js";
import { notice } from "./auth.js";
import {
  openTaskForm,
  removeTask,
  reportTaskError,
  setStatus,
  toggleArchived,
} from "./taskform.js";

const PAGE_SIZE = 25;
const COLUMNS = [
  ["title", "Title", "title"],
  ["priority", "Priority", "-priority"],
  ["due_at", "Due", "due_at"],
  ["created_at", "Created", "-created_at"],
  ["updated_at", "Updated", "-updated_at"],
];

export function listView(main, context) {
  return new TaskList(main, context);
}

/** The page's state: the rows loaded so far, the next page's cursor, the total. */
class TaskList {
  items = [];
  cursor = null;
  total = null;
  generation = 0;

  constructor(main, { query, flash }) {
    document.title = "Tasks · PrimeTrade Tasks";
    this.main = main;
    this.bar = filterBar({ withStatus: true, sortMenu: "narrow" });
    this.head = h("tr");
    this.body = h("tbody");
    this.table = h(
      "table",
      { class: "task-table" },
      h("caption", { class: "visually-hidden" }, "Your tasks"),
      h("thead", {}, this.head),
      this.body,
    );
    this.summary = h("p", { class: "list-summary muted", role: "status" });
    this.empty = h("div", { class: "empty", hidden: true });
    this.more = h(
      "button",
      { type: "button", class: "btn load-more", hidden: true, onClick: () => this.load(false) },
      "Load more",
    );
    this.actions = {
      edit: (task) => this.edit(task),
      replace: (task) => this.replace(task),
      drop: (task) => this.drop(task),
    };
    this.reload = () => this.load(true);
    document.addEventListener("taskschanged", this.reload);
    append(
      main,
      workspaceHeader({
        title: "Tasks",
        active: "/tasks",
        onNew: () => openTaskForm({ onSaved: this.reload }),
      }),
      flash && notice(flash.kind, flash.text),
      this.bar.element,
      quickAdd(this.reload),
      this.summary,
      h("div", { class: "table-wrap" }, this.table),
      this.empty,
      this.more,
    );
    this.update({ query });
  }

  /** The URL's query changed (a filter, the sort, back/forward). */
  update({ query }) {
    this.bar.sync(query);
    syncLayoutLinks(this.main, query);
    drawHead(this.head, query);
    this.load(true);
  }

  destroy() {
    document.removeEventListener("taskschanged", this.reload);
  }

  /** The first page again (`reset`), or the next one; an answer overtaken by a newer load is dropped. */
  async load(reset) {
    const ticket = ++this.generation;
    const params = apiQuery(new URLSearchParams(location.search));
    params.set("limit", PAGE_SIZE);
    params.set(reset ? "include_total" : "cursor", reset ? "true" : this.cursor);
    this.table.setAttribute("aria-busy", "true");
    try {
      const page = await listTasks(params);
      if (ticket !== this.generation) return;
      this.items = reset ? page.items : [...this.items, ...page.items];
      this.cursor = page.next_cursor ?? null;
      this.total = page.total ?? this.total;
      this.draw();
    } catch (error) {
      if (ticket === this.generation) reportTaskError(error);
    } finally {
      if (ticket === this.generation) this.table.removeAttribute("aria-busy");
    }
  }

  edit(task) {
    openTaskForm({ task, onSaved: this.actions.replace, onGone: this.actions.drop });
  }

  // A changed row is redrawn in place and keeps the keyboard focus on the same control; a
  // removed row hands it to its neighbour, so nobody is sent back to the top of the page.
  replace(task) {
    this.items = this.items.map((item) => (item.id === task.id ? task : item));
    const old = this.rowOf(task.id);
    if (old) swap(old, taskRow(task, this.actions));
    else this.draw();
  }

  drop(task) {
    const old = this.rowOf(task.id);
    const neighbour = (old?.nextElementSibling ?? old?.previousElementSibling)?.dataset.id;
    this.items = this.items.filter((item) => item.id !== task.id);
    this.total = this.total === null ? null : this.total - 1;
    this.draw();
    const next = neighbour && this.rowOf(neighbour)?.querySelector('[data-focus="title"]');
    (next || this.main.querySelector("#quick-add")).focus();
  }

  rowOf(id) {
    return this.body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  }

  draw() {
    this.body.replaceChildren(...this.items.map((task) => taskRow(task, this.actions)));
    this.table.hidden = this.items.length === 0;
    this.more.hidden = !this.cursor;
    this.summary.textContent = this.total === null ? "" : countText(this.items.length, this.total);
    drawEmpty(this.empty, this.items.length === 0);
  }
}

function countText(shown, total) {
  if (total === 0) return "";
  const noun = total === 1 ? "task" : "tasks";
  return shown < total ? `Showing ${shown} of ${total} ${noun}` : `${total} ${noun}`;
}

function drawEmpty(empty, show) {
  empty.hidden = !show;
  if (!show) return;
  const query = new URLSearchParams(location.search);
  const filtered = activeFilterCount(query) > 0 || query.get("q");
  empty.replaceChildren(
    h("span", { class: "empty-icon", "aria-hidden": "true" }, icon(filtered ? "search" : "check")),
    h("h2", {}, filtered ? "No tasks match" : "No tasks yet"),
    h(
      "p",
      { class: "muted" },
      filtered
        ? "Try other words or fewer filters."
        : "Type a title in the box above and press Enter to add your first task.",
    ),
    filtered &&
      h(
        "button",
        { type: "button", class: "btn", onClick: () => clearFilters({ search: true }) },
        "Clear search and filters",
      ),
  );
}

function drawHead(head, query) {
  const current = query.get("sort") || (query.get("q") ? "relevance" : "-created_at");
  const cell = ([key, label, first]) => {
    const direction = current === key ? "ascending" : current === `-${key}` ? "descending" : null;
    const next = direction === "ascending" ? `-${key}` : direction === "descending" ? key : first;
    const arrow = direction
      ? h(
          "span",
          { class: "sort-arrow", "aria-hidden": "true" },
          direction === "ascending" ? "↑" : "↓",
        )
      : null;
    return h(
      "th",
      { scope: "col", class: `col-${key}`, "aria-sort": direction },
      h(
        "button",
        {
          type: "button",
          class: "sort-button",
          onClick: () => updateQuery({ sort: next === "-created_at" ? "" : next }),
        },
        label,
        arrow,
      ),
    );
  };
  head.replaceChildren(
    h("th", { scope: "col", class: "col-done" }, h("span", { class: "visually-hidden" }, "Done")),
    ...COLUMNS.map(cell),
    h(
      "th",
      { scope: "col", class: "col-actions" },
      h("span", { class: "visually-hidden" }, "Actions"),
    ),
  );
}

function taskRow(task, { edit, replace, drop }) {
  const done = h("input", {
    type: "checkbox",
    checked: task.status === "done",
    dataset: { focus: "done" },
    "aria-label": `Done: ${task.title}`,
    disabled: Boolean(task.archived_at),
  });
  done.addEventListener("change", async () => {
    done.disabled = true;
    try {
      const changed = await setStatus(task, done.checked ? "done" : "todo");
      announce(done.checked ? `Marked “${task.title}” done.` : `“${task.title}” is to do again.`);
      replace(changed);
    } catch (error) {
      done.checked = !done.checked;
      done.disabled = false;
      reportTaskError(error);
    }
  });
  const overdue = isOverdue(task);
  return h(
    "tr",
    { class: `task-row status-${task.status}`, dataset: { id: task.id } },
    h("td", { class: "col-done" }, done),
    h(
      "td",
      { class: "col-title" },
      h(
        "button",
        {
          type: "button",
          class: "task-title",
          dataset: { focus: "title" },
          onClick: () => edit(task),
        },
        task.title,
      ),
      h(
        "div",
        { class: "task-meta" },
        h("span", { class: `status-pill status-${task.status}` }, STATUS_LABEL[task.status]),
        task.archived_at && h("span", { class: "tag tag-muted" }, "Archived"),
        task.tags.map((tag) => h("span", { class: "tag" }, tag)),
      ),
    ),
    h(
      "td",
      { class: "col-priority" },
      h("span", { class: `priority priority-${task.priority}` }, PRIORITY_LABEL[task.priority]),
    ),
    h(
      "td",
      { class: `col-due_at${overdue ? " overdue" : ""}` },
      task.due_at
        ? h(
            "time",
            { datetime: task.due_at, title: formatDateTime(task.due_at) },
            formatDue(task.due_at),
          )
        : h("span", { class: "muted" }, "—"),
      overdue && h("span", { class: "overdue-label" }, "Overdue"),
    ),
    h(
      "td",
      { class: "col-created_at" },
      h(
        "time",
        { datetime: task.created_at, title: formatDateTime(task.created_at) },
        formatDate(task.created_at),
      ),
    ),
    h(
      "td",
      { class: "col-updated_at" },
      h(
        "time",
        { datetime: task.updated_at, title: formatDateTime(task.updated_at) },
        formatDate(task.updated_at),
      ),
    ),
    h("td", { class: "col-actions" }, rowActions(task, { edit, replace, drop })),
  );
}

function rowActions(task, { edit, replace, drop }) {
  const button = (name, label, run) =>
    h(
      "button",
      {
        type: "button",
        class: "icon-btn",
        "aria-label": `${label} “${task.title}”`,
        title: label,
        dataset: { focus: name },
        onClick: run,
      },
      icon(name),
    );
  const archived = Boolean(task.archived_at);
  return h(
    "div",
    { class: "row-actions" },
    button("edit", "Edit", () => edit(task)),
    button(archived ? "restore" : "archive", archived ? "Restore" : "Archive", async () => {
      if (await toggleArchived(task)) drop(task);
    }),
    button("trash", "Delete", async () => {
      if (await removeTask(task)) drop(task);
    }),
  );
}

function quickAdd(onCreated) {
  const input = h("input", {
    type: "text",
    name: "title",
    id: "quick-add",
    autocomplete: "off",
    placeholder: "Add a task and press Enter",
    "aria-describedby": "quick-add-error",
  });
  const error = h("p", { class: "field-error", id: "quick-add-error", hidden: true });
  const submit = h("button", { type: "submit", class: "btn" }, icon("plus"), h("span", {}, "Add"));
  const form = h(
    "form",
    { class: "quick-add", novalidate: true },
    h("label", { for: "quick-add", class: "visually-hidden" }, "New task title"),
    h("div", { class: "quick-add-row" }, input, submit),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = input.value.trim();
    if (!title) return;
    submit.disabled = true;
    try {
      await createTask({ title });
      input.value = "";
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      announce(`Added “${title}”.`);
      onCreated();
    } catch (problem) {
      if (problem.status !== 422) return reportTaskError(problem);
      error.textContent = problem.errors[0]?.msg ?? problem.detail;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
