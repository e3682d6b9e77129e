// /board: one column per status. Drag a card to another column, or focus it and press ← / →
// (or use its "Move to" menu, which also works on touch screens where drag and drop does not).

import { listTasks } from "../tasks.js";
import { announce, append, h } from "../ui.js";
import { select } from "../forms.js";
import {
  formatDateTime,
  formatDue,
  isOverdue,
  PRIORITY_LABEL,
  STATUS_LABEL,
  STATUSES,
} from "../format.js";
import { apiQuery, filterBar, syncLayoutLinks, workspaceHeader } from "./filters.js";
import { notice } from "./auth.js";
import { openTaskForm, reportTaskError, setStatus } from "./taskform.js";

const COLUMN_SIZE = 50;
const ORDER = STATUSES.map(([status]) => status);

export function boardView(main, context) {
  return new Board(main, context);
}

/** The page's state: every loaded task by id, and each column's next-page cursor. */
class Board {
  tasks = new Map();
  cursors = {};
  generation = 0;

  constructor(main, { query, flash }) {
    document.title = "Board · PrimeTrade Tasks";
    this.main = main;
    this.bar = filterBar({ withStatus: false });
    this.columns = Object.fromEntries(
      STATUSES.map(([status, label]) => [status, column(status, label)]),
    );
    this.element = h(
      "div",
      { class: "board" },
      ORDER.map((status) => this.columns[status].element),
    );
    this.actions = {
      move: (id, status, options) => this.move(id, status, options),
      edit: (task) =>
        openTaskForm({
          task,
          onSaved: (saved) => this.saved(saved),
          onGone: (gone) => this.gone(gone),
        }),
    };
    this.reload = () => this.load();
    this.listen();
    append(
      main,
      workspaceHeader({
        title: "Board",
        active: "/board",
        onNew: () => openTaskForm({ onSaved: (task) => this.saved(task) }),
      }),
      flash && notice(flash.kind, flash.text),
      this.bar.element,
      h(
        "p",
        { class: "muted board-help", id: "board-help" },
        "Drag a card to another column, pick a status on the card, or focus a card and press ← or →.",
      ),
      this.element,
    );
    this.update({ query });
  }

  listen() {
    document.addEventListener("taskschanged", this.reload);
    this.element.addEventListener("dragstart", (event) => {
      const card = event.target.closest?.(".task-card");
      if (!card) return;
      event.dataTransfer.setData("text/plain", card.dataset.id);
      event.dataTransfer.effectAllowed = "move";
      card.classList.add("dragging");
    });
    this.element.addEventListener("dragend", (event) =>
      event.target.closest?.(".task-card")?.classList.remove("dragging"),
    );
    for (const status of ORDER) {
      acceptDrops(this.columns[status], (id) => this.move(id, status));
      this.columns[status].more.addEventListener("click", () => this.loadMore(status));
    }
  }

  /** The URL's query changed (a filter, the sort, back/forward). */
  update({ query }) {
    this.bar.sync(query);
    syncLayoutLinks(this.main, query);
    this.load();
  }

  destroy() {
    document.removeEventListener("taskschanged", this.reload);
  }

  /** Every column's first page; an answer overtaken by a newer load is dropped. */
  async load() {
    const ticket = ++this.generation;
    this.element.setAttribute("aria-busy", "true");
    try {
      this.tasks.clear();
      await Promise.all(ORDER.map((status) => this.loadColumn(status, ticket)));
      if (ticket === this.generation) ORDER.forEach((status) => this.draw(status));
    } catch (error) {
      if (ticket === this.generation) reportTaskError(error);
    } finally {
      if (ticket === this.generation) this.element.removeAttribute("aria-busy");
    }
  }

  async loadColumn(status, ticket, cursor = null) {
    const params = apiQuery(new URLSearchParams(location.search), { withStatus: false });
    params.set("status", status);
    params.set("limit", COLUMN_SIZE);
    if (cursor) params.set("cursor", cursor);
    const page = await listTasks(params);
    if (ticket !== this.generation) return;
    for (const task of page.items) this.tasks.set(task.id, task);
    this.cursors[status] = page.next_cursor ?? null;
  }

  async loadMore(status) {
    try {
      await this.loadColumn(status, this.generation, this.cursors[status]);
      this.draw(status);
    } catch (error) {
      reportTaskError(error);
    }
  }

  draw(status) {
    const { list, count, more } = this.columns[status];
    const inColumn = [...this.tasks.values()].filter((task) => task.status === status);
    list.replaceChildren(...inColumn.map((task) => card(task, this.actions)));
    count.textContent = String(inColumn.length) + (this.cursors[status] ? "+" : "");
    more.hidden = !this.cursors[status];
    list.classList.toggle("is-empty", inColumn.length === 0);
  }

  /** Move a card at once, then tell the server; put it back if the server refuses. */
  async move(id, status, { focus = null } = {}) {
    const task = this.tasks.get(id);
    if (!task || task.status === status) return;
    this.place(task, { ...task, status }, focus);
    try {
      this.place(task, await setStatus(task, status), focus);
      announce(`Moved “${task.title}” to ${STATUS_LABEL[status]}.`);
    } catch (error) {
      this.place({ ...task, status }, task, focus);
      reportTaskError(error);
    }
  }

  place(before, after, focus) {
    this.tasks.set(after.id, after);
    this.draw(before.status);
    if (after.status !== before.status) this.draw(after.status);
    if (focus) focusCard(after.id, focus);
  }

  saved(task) {
    this.tasks.set(task.id, task);
    ORDER.forEach((status) => this.draw(status));
    focusCard(task.id, "card");
  }

  gone(task) {
    this.tasks.delete(task.id);
    this.draw(task.status);
  }
}

function column(status, label) {
  const headingId = `column-${status}`;
  const list = h("ul", { class: "column-list", "aria-labelledby": headingId });
  const count = h("span", { class: "count-number" }, "0");
  const more = h(
    "button",
    { type: "button", class: "btn btn-ghost load-more", hidden: true },
    "Load more",
  );
  const element = h(
    "section",
    { class: `column column-${status}`, dataset: { status }, "aria-labelledby": headingId },
    h(
      "h2",
      { class: "column-head", id: headingId },
      h("span", { class: `dot status-${status}`, "aria-hidden": "true" }),
      label,
      h("span", { class: "count" }, count, h("span", { class: "visually-hidden" }, " tasks")),
    ),
    list,
    more,
  );
  return { element, list, count, more };
}

function acceptDrops({ element }, onDrop) {
  element.addEventListener("dragover", (event) => {
    if (!event.dataTransfer.types.includes("text/plain")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    element.classList.add("drop-target");
  });
  element.addEventListener("dragleave", (event) => {
    if (!element.contains(event.relatedTarget)) element.classList.remove("drop-target");
  });
  element.addEventListener("drop", (event) => {
    event.preventDefault();
    element.classList.remove("drop-target");
    const id = event.dataTransfer.getData("text/plain");
    if (id) onDrop(id);
  });
}

function card(task, { move, edit }) {
  const mover = select(STATUSES, task.status, {
    class: "move-select",
    "aria-label": `Move “${task.title}” to`,
  });
  mover.addEventListener("change", () => move(task.id, mover.value, { focus: "select" }));
  const overdue = isOverdue(task);
  const element = h(
    "li",
    {
      class: `task-card priority-edge-${task.priority}`,
      draggable: "true",
      tabindex: "0",
      dataset: { id: task.id },
      "aria-label": cardLabel(task),
      "aria-describedby": "board-help",
    },
    h("button", { type: "button", class: "card-title", onClick: () => edit(task) }, task.title),
    h(
      "div",
      { class: "card-meta" },
      h("span", { class: `priority priority-${task.priority}` }, PRIORITY_LABEL[task.priority]),
      task.due_at &&
        h(
          "time",
          {
            class: overdue ? "overdue" : "",
            datetime: task.due_at,
            title: formatDateTime(task.due_at),
          },
          overdue ? `Overdue · ${formatDue(task.due_at)}` : formatDue(task.due_at),
        ),
    ),
    h(
      "div",
      { class: "card-foot" },
      h(
        "div",
        { class: "card-tags" },
        task.tags.map((tag) => h("span", { class: "tag" }, tag)),
      ),
      mover,
    ),
  );
  element.addEventListener("keydown", (event) => onCardKey(event, task, { move, edit }));
  return element;
}

function cardLabel(task) {
  const due = task.due_at ? `, due ${formatDue(task.due_at)}` : "";
  return `${task.title}, ${PRIORITY_LABEL[task.priority]} priority${due}, ${STATUS_LABEL[task.status]}`;
}

function onCardKey(event, task, { move, edit }) {
  if (event.target !== event.currentTarget) return;
  const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
  if (step) {
    const next = ORDER[ORDER.indexOf(task.status) + step];
    event.preventDefault();
    if (next) move(task.id, next, { focus: "card" });
    else announce(`“${task.title}” is already in the ${step < 0 ? "first" : "last"} column.`);
    return;
  }
  const sibling = { ArrowUp: "previousElementSibling", ArrowDown: "nextElementSibling" }[event.key];
  if (sibling) {
    event.preventDefault();
    event.currentTarget[sibling]?.focus();
  } else if (event.key === "Enter") {
    event.preventDefault();
    edit(task);
  }
}

/** Focus a card that was just redrawn (`part`: the card itself, or its status menu). */
function focusCard(id, part) {
  const card = document.querySelector(`.task-card[data-id="${CSS.escape(id)}"]`);
  (part === "select" ? card?.querySelector(".move-select") : card)?.focus();
}
