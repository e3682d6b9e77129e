// The task dialog (create and edit), and the actions a task offers anywhere: complete,
// archive, restore and delete.

import { newIdempotencyKey } from "../api.js";
import {
  archiveTask,
  createTask,
  deleteTask,
  fetchTask,
  restoreTask,
  updateTask,
} from "../tasks.js";
import { confirmDialog, h, icon, openDialog, showError, toast } from "../ui.js";
import { busy, clearFormErrors, errorSummary, field, select, showFormErrors } from "../forms.js";
import { fromLocalInput, PRIORITIES, STATUSES, toLocalInput } from "../format.js";

const CONFLICT = "Someone else changed this task";

/**
 * Open the form for a new task (`task` absent; `defaults` prefill it) or for an existing one,
 * read afresh so its ETag is current. `onSaved(task)` runs after a save; `onGone(task)` after
 * a delete or an archive from the dialog.
 */
export async function openTaskForm({ task = null, ...options } = {}) {
  try {
    return new TaskDialog(task ? await fetchTask(task.id) : null, options);
  } catch (error) {
    return showError(error);
  }
}

class TaskDialog {
  // One key per dialog: pressing Create again after a lost answer cannot make a second task.
  key = newIdempotencyKey();

  constructor(current, { defaults = {}, onSaved = () => {}, onGone = () => {} }) {
    this.current = current;
    this.onSaved = onSaved;
    this.onGone = onGone;
    this.form = buildForm(current ?? { status: "todo", priority: "medium", ...defaults });
    this.conflict = h("div", {
      class: "notice notice-warning conflict",
      role: "alert",
      hidden: true,
    });
    this.form.prepend(this.conflict);
    const label = current ? "Save changes" : "Create task";
    this.save = h(
      "button",
      { type: "submit", class: "btn btn-primary", form: this.form.id },
      label,
    );
    this.dialog = openDialog({
      title: current ? "Edit task" : "New task",
      body: this.form,
      actions: this.actions(),
      className: "dialog-form",
    }).dialog;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(this.save, () => this.submit());
    });
    this.form.querySelector("input").focus();
  }

  actions() {
    const cancel = h(
      "button",
      { type: "button", class: "btn", onClick: () => this.dialog.close() },
      "Cancel",
    );
    const tail = [h("span", { class: "spacer" }), cancel, this.save];
    if (!this.current) return tail;
    return [
      dangerActions(
        () => this.current,
        (task) => this.gone(task),
      ),
      ...tail,
    ];
  }

  async submit() {
    try {
      const saved = this.current
        ? await saveChanges(this.form, this.current)
        : await createTask(readForm(this.form), this.key);
      this.dialog.close("saved");
      const message = this.current ? "Your changes are saved." : `“${saved.title}” was created.`;
      toast(message, { kind: "success" });
      this.onSaved(saved);
    } catch (error) {
      if (error.status === 412) return showConflict(this.conflict, () => this.reload());
      showFormErrors(this.form, error);
    }
  }

  /** The task as it is now, after a 412: the form shows it and edits go on from there. */
  async reload() {
    this.current = await fetchTask(this.current.id);
    fillForm(this.form, this.current);
    this.conflict.hidden = true;
    clearFormErrors(this.form);
  }

  gone(task) {
    this.dialog.close("gone");
    this.onGone(task);
  }
}

async function saveChanges(form, current) {
  const values = readForm(form);
  const changes = Object.fromEntries(
    Object.entries(values).filter(
      ([name, value]) =>
        JSON.stringify(value) !== JSON.stringify(current[name] ?? (name === "due_at" ? null : "")),
    ),
  );
  if ("due_at" in changes && sameInstant(changes.due_at, current.due_at)) delete changes.due_at;
  return Object.keys(changes).length === 0 ? current : updateTask(current, changes);
}

function sameInstant(a, b) {
  return a && b && new Date(a).getTime() === new Date(b).getTime();
}

function showConflict(box, reload) {
  const button = h("button", { type: "button", class: "btn btn-small" }, "Reload");
  button.addEventListener("click", () => busy(button, () => reload().catch(showError)));
  box.replaceChildren(
    icon("alert"),
    h(
      "div",
      {},
      h("strong", {}, `${CONFLICT}.`),
      " Reload to see the current version; what you typed here will be replaced.",
    ),
    button,
  );
  box.hidden = false;
  button.focus();
}

function buildForm(task) {
  const form = h(
    "form",
    {
      id: `task-form-${Math.random().toString(36).slice(2)}`,
      class: "task-form",
      novalidate: true,
    },
    errorSummary(),
    field({ label: "Title", name: "title", autocomplete: "off" }),
    field({ label: "Description", name: "description", type: "textarea", rows: "4" }),
    h(
      "div",
      { class: "field-row" },
      field({ label: "Status", name: "status", control: select(STATUSES, task.status) }),
      field({ label: "Priority", name: "priority", control: select(PRIORITIES, task.priority) }),
    ),
    h(
      "div",
      { class: "field-row" },
      field({
        label: "Due",
        name: "due_at",
        type: "datetime-local",
        hint: `Your time zone: ${Intl.DateTimeFormat().resolvedOptions().timeZone}`,
      }),
      field({
        label: "Tags",
        name: "tags",
        autocomplete: "off",
        hint: "Separate tags with commas",
      }),
    ),
  );
  fillForm(form, task);
  return form;
}

function fillForm(form, task) {
  const set = (name, value) => {
    form.elements.namedItem(name).value = value;
  };
  set("title", task.title ?? "");
  set("description", task.description ?? "");
  set("status", task.status);
  set("priority", task.priority);
  set("due_at", toLocalInput(task.due_at));
  set("tags", (task.tags ?? []).join(", "));
}

function readForm(form) {
  const values = Object.fromEntries(new FormData(form));
  return {
    title: values.title.trim(),
    description: values.description,
    status: values.status,
    priority: values.priority,
    due_at: fromLocalInput(values.due_at),
    tags: values.tags
      .split(",")
      .map((tag) => tag.trim())
      .filter(Boolean),
  };
}

function dangerActions(currentTask, gone) {
  const remove = h(
    "button",
    { type: "button", class: "btn btn-ghost btn-danger-text" },
    icon("trash"),
    "Delete",
  );
  remove.addEventListener("click", async () => {
    if (await removeTask(currentTask())) gone(currentTask());
  });
  const task = currentTask();
  const archive = h(
    "button",
    { type: "button", class: "btn btn-ghost" },
    icon(task.archived_at ? "restore" : "archive"),
    task.archived_at ? "Restore" : "Archive",
  );
  archive.addEventListener("click", async () => {
    const changed = await toggleArchived(currentTask());
    if (changed) gone(changed);
  });
  return h("div", { class: "danger-actions" }, remove, archive);
}

// --- Actions used by the list, the board and the dialog ------------------------------------

/** Ask, then delete; true once deleted. */
export async function removeTask(task) {
  const confirmed = await confirmDialog({
    title: "Delete this task?",
    message: `“${task.title}” will be deleted for good. This can't be undone.`,
    confirmLabel: "Delete task",
    danger: true,
  });
  if (!confirmed) return false;
  try {
    await deleteTask(task);
    toast(`“${task.title}” was deleted.`, { kind: "success" });
    return true;
  } catch (error) {
    reportTaskError(error);
    return false;
  }
}

/** Archive a task, or restore an archived one; the changed task, or null. */
export async function toggleArchived(task) {
  try {
    const changed = task.archived_at ? await restoreTask(task) : await archiveTask(task);
    const undo = changed.archived_at
      ? {
          label: "Undo",
          run: () =>
            restoreTask(changed)
              .then(() => document.dispatchEvent(new CustomEvent("taskschanged")))
              .catch(reportTaskError),
        }
      : undefined;
    toast(
      changed.archived_at
        ? `“${task.title}” was archived.`
        : `“${task.title}” is back in your tasks.`,
      { kind: "success", action: undo },
    );
    return changed;
  } catch (error) {
    reportTaskError(error);
    return null;
  }
}

/** Mark a task done, or back to do. */
export function setStatus(task, status) {
  return updateTask(task, { status });
}

/** A failed change: a 412 offers to reload the view, anything else says what went wrong. */
export function reportTaskError(error) {
  if (error.status !== 412) return showError(error);
  toast("Reload to see the current version.", {
    kind: "error",
    title: CONFLICT,
    action: { label: "Reload", run: () => document.dispatchEvent(new CustomEvent("taskschanged")) },
  });
}
