// Words and dates as the pages show them.

export const STATUSES = [
  ["todo", "To do"],
  ["in_progress", "In progress"],
  ["done", "Done"],
];
export const PRIORITIES = [
  ["low", "Low"],
  ["medium", "Medium"],
  ["high", "High"],
  ["urgent", "Urgent"],
];
export const STATUS_LABEL = Object.fromEntries(STATUSES);
export const PRIORITY_LABEL = Object.fromEntries(PRIORITIES);

const thisYearFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const longDateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "long" });

export function formatLongDate(iso) {
  return iso ? longDateFormat.format(new Date(iso)) : "";
}

/** "Mar 4" this year, "Mar 4, 2025" otherwise. */
export function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return (date.getFullYear() === new Date().getFullYear() ? thisYearFormat : dateFormat).format(
    date,
  );
}

export function formatDateTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "";
}

/** A due date as a person says it: "Today 14:00", "Tomorrow", "Mar 4". */
export function formatDue(iso) {
  if (!iso) return "";
  const due = new Date(iso);
  const days = Math.round((startOfDay(due) - startOfDay(new Date())) / 86_400_000);
  const time = timeFormat.format(due);
  if (days === 0) return `Today ${time}`;
  if (days === 1) return `Tomorrow ${time}`;
  if (days === -1) return `Yesterday ${time}`;
  return formatDate(iso);
}

export function isOverdue(task) {
  return Boolean(task.due_at) && task.status !== "done" && new Date(task.due_at) < new Date();
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/** An ISO instant as a datetime-local input's value, in the browser's time zone. */
export function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** A datetime-local (or date) input's value as a time-zone-aware ISO instant. */
export function fromLocalInput(value) {
  if (!value) return null;
  const date = new Date(value.includes("T") ? value : `${value}T00:00`);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

export function timeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
