// The task views' header and filter bar. The URL's query string is the single source of the
// filters and the sort (/tasks?status=todo&priority=high&q=report&sort=-due_at), so a view
// can be bookmarked and back/forward step through filter changes.

import { navigate } from "../router.js";
import { debounce, h, icon } from "../ui.js";
import { field } from "../forms.js";
import {
  formatDate,
  fromLocalInput,
  PRIORITIES,
  PRIORITY_LABEL,
  STATUS_LABEL,
  STATUSES,
} from "../format.js";

export const SORTS = [
  ["-created_at", "Newest first"],
  ["created_at", "Oldest first"],
  ["due_at", "Due soonest"],
  ["-due_at", "Due latest"],
  ["-priority", "Priority, highest first"],
  ["priority", "Priority, lowest first"],
  ["title", "Title, A to Z"],
  ["-title", "Title, Z to A"],
  ["-updated_at", "Recently updated"],
  ["updated_at", "Least recently updated"],
];
const RELEVANCE = ["relevance", "Best match"];
const FILTERS = ["status", "priority", "tag", "due_after", "due_before", "overdue", "archived"];

/** The page heading with the List/Board switch and the New task button. */
export function workspaceHeader({ title, active, onNew }) {
  const views = [
    ["/tasks", "List", "list"],
    ["/board", "Board", "board"],
  ];
  return h(
    "div",
    { class: "page-head" },
    h("h1", { tabindex: "-1" }, title),
    h(
      "nav",
      { class: "segmented", "aria-label": "Layout" },
      views.map(([path, label, name]) =>
        h(
          "a",
          {
            href: path,
            dataset: { layout: path },
            "aria-current": active === path ? "page" : null,
          },
          icon(name),
          label,
        ),
      ),
    ),
    h(
      "button",
      { type: "button", class: "btn btn-primary", onClick: onNew },
      icon("plus"),
      "New task",
    ),
  );
}

/** Point the List/Board links at the same filters (the board has no status filter). */
export function syncLayoutLinks(root, query) {
  const kept = new URLSearchParams(query);
  kept.delete("status");
  const search = kept.toString() ? `?${kept}` : "";
  for (const link of root.querySelectorAll("[data-layout]")) {
    link.href = link.dataset.layout + search;
  }
}

/** Change some keys of the URL's query (an empty value removes a key) and show the result. */
export function updateQuery(changes, { replace = false } = {}) {
  const query = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(changes)) {
    query.delete(key);
    for (const item of [value].flat()) if (item) query.append(key, item);
  }
  const text = query.toString();
  navigate(location.pathname + (text ? `?${text}` : ""), { replace });
}

/** Drop every filter (and the search, with `search`), keeping the sort. */
export function clearFilters({ search = false } = {}) {
  const keys = search ? [...FILTERS, "q"] : FILTERS;
  updateQuery(Object.fromEntries(keys.map((key) => [key, ""])));
}

/** The filters of a URL query as /tasks API parameters. */
export function apiQuery(query, { withStatus = true } = {}) {
  const params = new URLSearchParams();
  for (const key of ["q", "priority", "tag", "sort", ...(withStatus ? ["status"] : [])]) {
    for (const value of query.getAll(key)) if (value) params.append(key, value);
  }
  const after = fromLocalInput(query.get("due_after"));
  const before = dayAfter(query.get("due_before"));
  if (after) params.set("due_after", after);
  if (before) params.set("due_before", before);
  for (const flag of ["overdue", "archived"])
    if (query.get(flag) === "true") params.set(flag, "true");
  return params;
}

// "Due before 12 March" includes the 12th: the API's bound is exclusive, so send the next midnight.
function dayAfter(date) {
  const start = fromLocalInput(date);
  if (!start) return null;
  const next = new Date(start);
  next.setDate(next.getDate() + 1);
  return next.toISOString();
}

export function activeFilterCount(query, { withStatus = true } = {}) {
  const keys = withStatus ? FILTERS : FILTERS.filter((key) => key !== "status");
  return keys.reduce((count, key) => count + query.getAll(key).filter(Boolean).length, 0);
}

/**
 * The search box, the Filters panel, the sort menu and the chips of active filters.
 * `sync(query)` brings every control in line with the URL after back/forward.
 */
export function filterBar({ withStatus = true, sortMenu = "always" }) {
  const search = h("input", {
    type: "search",
    name: "q",
    id: "task-search",
    placeholder: "Search tasks",
    autocomplete: "off",
    "aria-label": "Search tasks",
    maxlength: "200",
  });
  const toggle = h(
    "button",
    { type: "button", class: "btn", "aria-expanded": "false", "aria-controls": "filter-panel" },
    icon("filter"),
    h("span", {}, "Filters"),
  );
  const sort = h("select", { id: "task-sort", name: "sort", "aria-label": "Sort by" });
  const chips = h("ul", { class: "chips", "aria-label": "Active filters" });
  const panel = filterPanel(withStatus);
  const bar = h(
    "div",
    { class: "filterbar" },
    h(
      "div",
      { class: "filterbar-row" },
      h("div", { class: "search" }, icon("search"), search),
      toggle,
      h("div", { class: `sort sort-${sortMenu}` }, h("label", { for: "task-sort" }, "Sort"), sort),
    ),
    panel,
    chips,
  );

  const apply = updateQuery;
  const typed = debounce(() => {
    const before = new URLSearchParams(location.search).get("q") ?? "";
    // The first keystroke of a search is a step back/forward can return to; the rest refine it.
    apply({ q: search.value.trim() }, { replace: before !== "" });
  }, 300);
  search.addEventListener("input", typed);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && search.value) {
      search.value = "";
      typed();
    }
  });
  sort.addEventListener("change", () =>
    apply({ sort: sort.value === "-created_at" ? "" : sort.value }),
  );
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    panel.hidden = !open;
    if (open) panel.querySelector("input").focus();
  });
  panel.addEventListener("change", () => apply(panelValues(panel, withStatus)));
  panel.querySelector("[data-clear]").addEventListener("click", () => clearFilters());

  const sync = (query) => {
    if (document.activeElement !== search) search.value = query.get("q") ?? "";
    fillSort(sort, query);
    syncPanel(panel, query);
    const count = activeFilterCount(query, { withStatus });
    toggle.querySelector("span").textContent = count ? `Filters (${count})` : "Filters";
    drawChips(chips, query, withStatus, apply);
  };
  return { element: bar, sync, focusSearch: () => search.focus() };
}

function fillSort(sort, query) {
  const searching = Boolean(query.get("q"));
  const options = searching ? [RELEVANCE, ...SORTS] : SORTS;
  const value = query.get("sort") || (searching ? "relevance" : "-created_at");
  sort.replaceChildren(
    ...options.map(([key, label]) => h("option", { value: key, selected: key === value }, label)),
  );
}

function filterPanel(withStatus) {
  const checks = (name, legend, options) =>
    h(
      "fieldset",
      { class: "checks" },
      h("legend", {}, legend),
      options.map(([value, label]) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", name, value }), label),
      ),
    );
  return h(
    "div",
    {
      class: "filter-panel",
      id: "filter-panel",
      hidden: true,
      role: "group",
      "aria-label": "Filters",
    },
    withStatus && checks("status", "Status", STATUSES),
    checks("priority", "Priority", PRIORITIES),
    h(
      "div",
      { class: "filter-fields" },
      field({
        label: "Tag",
        name: "tag",
        hint: "Separate several with commas",
        autocomplete: "off",
      }),
      field({ label: "Due from", name: "due_after", type: "date" }),
      field({ label: "Due until", name: "due_before", type: "date" }),
    ),
    h(
      "fieldset",
      { class: "checks" },
      h("legend", {}, "Show"),
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: "overdue", value: "true" }),
        "Only overdue",
      ),
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: "archived", value: "true" }),
        "Archived tasks",
      ),
    ),
    h(
      "div",
      { class: "filter-actions" },
      h(
        "button",
        { type: "button", class: "btn btn-ghost", dataset: { clear: "" } },
        "Clear filters",
      ),
    ),
  );
}

function panelValues(panel, withStatus) {
  const checked = (name) =>
    [...panel.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => input.value);
  const value = (name) => panel.querySelector(`[name="${name}"]`).value;
  const tags = value("tag")
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
  return {
    ...(withStatus ? { status: checked("status") } : {}),
    priority: checked("priority"),
    tag: tags,
    due_after: value("due_after"),
    due_before: value("due_before"),
    overdue: checked("overdue"),
    archived: checked("archived"),
  };
}

function syncPanel(panel, query) {
  for (const input of panel.querySelectorAll("input[type=checkbox]")) {
    input.checked = query.getAll(input.name).includes(input.value);
  }
  const tag = panel.querySelector('[name="tag"]');
  if (document.activeElement !== tag) tag.value = query.getAll("tag").join(", ");
  for (const name of ["due_after", "due_before"])
    panel.querySelector(`[name="${name}"]`).value = query.get(name) ?? "";
}

function drawChips(chips, query, withStatus, apply) {
  const chip = (label, key, value) => {
    const rest = query.getAll(key).filter((item) => item !== value);
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "chip",
          onClick: () => apply({ [key]: rest }),
          "aria-label": `Remove filter ${label}`,
        },
        label,
        icon("close"),
      ),
    );
  };
  const items = [
    ...(withStatus
      ? query.getAll("status").map((s) => chip(`Status: ${STATUS_LABEL[s] ?? s}`, "status", s))
      : []),
    ...query
      .getAll("priority")
      .map((p) => chip(`Priority: ${PRIORITY_LABEL[p] ?? p}`, "priority", p)),
    ...query.getAll("tag").map((tag) => chip(`Tag: ${tag}`, "tag", tag)),
    query.get("due_after") &&
      chip(`Due from ${day(query.get("due_after"))}`, "due_after", query.get("due_after")),
    query.get("due_before") &&
      chip(`Due until ${day(query.get("due_before"))}`, "due_before", query.get("due_before")),
    query.get("overdue") === "true" && chip("Overdue", "overdue", "true"),
    query.get("archived") === "true" && chip("Archived", "archived", "true"),
  ].filter(Boolean);
  chips.replaceChildren(...items);
  chips.hidden = items.length === 0;
}

const day = (date) => formatDate(fromLocalInput(date)) || date;
