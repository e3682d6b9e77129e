// /stats: counts of your tasks, with bar charts drawn as SVG.

import { taskStats } from "../tasks.js";
import { append, h, icon, showError, svg } from "../ui.js";
import { PRIORITIES, STATUSES, timeZone } from "../format.js";

export function statsView(main) {
  document.title = "Stats · PrimeTrade Tasks";
  const body = h(
    "div",
    { class: "stats", "aria-busy": "true" },
    h("p", { class: "muted" }, "Loading…"),
  );
  append(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Stats"),
      h("p", { class: "muted page-note" }, "Archived tasks are not counted."),
    ),
    body,
  );
  taskStats(timeZone())
    .then((stats) => {
      body.replaceChildren(tiles(stats), charts(stats));
      body.removeAttribute("aria-busy");
    })
    .catch((error) => {
      body.replaceChildren(h("p", { class: "muted" }, "The numbers could not be loaded."));
      showError(error);
    });
}

function tiles(stats) {
  const today = localDate();
  const tile = (label, value, { href, tone = "", name }) =>
    h(
      "li",
      { class: `tile ${tone}` },
      h("span", { class: "tile-icon", "aria-hidden": "true" }, icon(name)),
      h("span", { class: "tile-value" }, String(value)),
      href
        ? h("a", { href, class: "tile-label" }, label)
        : h("span", { class: "tile-label" }, label),
    );
  return h(
    "ul",
    { class: "tiles", "aria-label": "Summary" },
    tile("Tasks", stats.total, { href: "/tasks", name: "list" }),
    tile("Overdue", stats.overdue, {
      href: "/tasks?overdue=true",
      tone: stats.overdue ? "tone-danger" : "",
      name: "alert",
    }),
    tile("Due today", stats.due_today, {
      href: `/tasks?due_after=${today}&due_before=${today}&sort=due_at`,
      name: "calendar",
    }),
    tile("Done in the last 7 days", stats.completed_last_7_days, {
      tone: "tone-success",
      name: "check",
    }),
  );
}

function localDate() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

function charts(stats) {
  return h(
    "div",
    { class: "charts" },
    chartCard(
      "By status",
      STATUSES.map(([key, label]) => [key, label, stats.by_status[key] ?? 0]),
      "status",
    ),
    chartCard(
      "By priority",
      PRIORITIES.map(([key, label]) => [key, label, stats.by_priority[key] ?? 0]),
      "priority",
    ),
  );
}

/**
 * A bar chart: the labels and numbers are text, each bar a small SVG. Screen readers get the
 * numbers from the chart's label, not from the shapes.
 */
function chartCard(title, rows, kind) {
  const max = Math.max(1, ...rows.map(([, , value]) => value));
  const description = `${title}: ${rows.map(([, label, value]) => `${label} ${value}`).join(", ")}.`;
  const chart = h(
    "div",
    { class: "chart", role: "img", "aria-label": description },
    rows.map(([key, label, value]) =>
      h(
        "div",
        { class: `bar bar-${kind}-${key}`, "aria-hidden": "true" },
        h("span", { class: "bar-label" }, label),
        svg(
          "svg",
          {
            class: "bar-svg",
            viewBox: "0 0 100 10",
            preserveAspectRatio: "none",
            focusable: "false",
          },
          svg("rect", { class: "bar-track", width: 100, height: 10 }),
          svg("rect", {
            class: "bar-fill",
            width: value > 0 ? Math.max(2, (value / max) * 100) : 0,
            height: 10,
          }),
        ),
        h("span", { class: "bar-value" }, String(value)),
      ),
    ),
  );
  return h("section", { class: "card chart-card", "aria-label": title }, h("h2", {}, title), chart);
}
