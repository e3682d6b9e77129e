// Reading and changing tasks, with the ETag each change must send (If-Match).
//
// A single task's ETag comes in its response header and is kept here per task. List pages
// carry no per-task header, only each task's `version`, of which the ETag is the quoted
// form; so a task met only in a list gets that, and a stale one still earns its 412.

import { api, newIdempotencyKey, request } from "./api.js";

const etags = new Map();

function remember({ data: task, headers }) {
  const etag = headers.get("ETag");
  if (etag) etags.set(task.id, { version: task.version, etag });
  return task;
}

export function etagOf(task) {
  const known = etags.get(task.id);
  return known?.version === task.version ? known.etag : `"v${task.version}"`;
}

const ifMatch = (task) => ({ "If-Match": etagOf(task) });

export function listTasks(query) {
  return api.get("/tasks", { query });
}

export async function fetchTask(id) {
  return remember(await request("GET", `/tasks/${id}`));
}

/** Create a task; the same `key` on a retry makes the server answer with the first result. */
export async function createTask(body, key = newIdempotencyKey()) {
  return remember(await request("POST", "/tasks", { body, headers: { "Idempotency-Key": key } }));
}

export async function updateTask(task, changes) {
  return remember(
    await request("PATCH", `/tasks/${task.id}`, { body: changes, headers: ifMatch(task) }),
  );
}

export async function deleteTask(task) {
  await request("DELETE", `/tasks/${task.id}`, { headers: ifMatch(task) });
  etags.delete(task.id);
}

export async function archiveTask(task) {
  return remember(await request("POST", `/tasks/${task.id}/archive`, { headers: ifMatch(task) }));
}

export async function restoreTask(task) {
  return remember(await request("POST", `/tasks/${task.id}/restore`, { headers: ifMatch(task) }));
}

export function taskStats(tz) {
  return api.get("/tasks/stats", { query: { tz } });
}
