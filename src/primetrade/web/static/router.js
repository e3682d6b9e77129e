// Client-side routing with the History API. The server answers the page at each of these
// paths, so every URL can be bookmarked, reloaded and shared.

const routes = [];
let listener = () => {};
let flash = null;

// A page open through a deploy keeps running the modules of its build, while the new server
// answers 404 under /assets/<old build>/. So each link followed inside the page also asks for
// one small file of this build (the icon); once that is gone, the next link is left to the
// browser, whose full load brings the new build. Once per build and tab, so a page that comes
// back in the old build (from a server not yet updated) cannot reload on every click.
const PROBE = new URL("./favicon.svg", import.meta.url);
const RELOADED_FROM = "primetrade:reloaded-from";
let outdated = false;

/** Register a path ("/admin/users/:id") and what to do there. */
export function route(path, handler, options = {}) {
  const keys = [];
  const pattern = path.replace(/:(\w+)/g, (_, key) => {
    keys.push(key);
    return "([^/]+)";
  });
  routes.push({ path, pattern: new RegExp(`^${pattern}/?$`), keys, handler, ...options });
}

/** The route for a path, with its parameters; null when none matches. */
export function match(pathname) {
  for (const entry of routes) {
    const found = entry.pattern.exec(pathname);
    if (found) {
      const params = Object.fromEntries(
        entry.keys.map((key, i) => [key, decodeURIComponent(found[i + 1])]),
      );
      return { route: entry, params };
    }
  }
  return null;
}

/**
 * Go to a URL inside the app. `replace` rewrites the current history entry (redirects, the
 * search box while typing); `flash` is a message for the next page only.
 */
export function navigate(url, { replace = false, flash: message = null } = {}) {
  flash = message;
  const target = new URL(url, location.origin);
  const same = target.pathname + target.search === location.pathname + location.search;
  if (replace || same) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  listener();
}

/** The message left for this page by the navigation that led here, once. */
export function takeFlash() {
  const message = flash;
  flash = null;
  return message;
}

/** Start listening: back/forward, and clicks on same-origin links. */
export function start(onChange) {
  listener = onChange;
  addEventListener("popstate", () => onChange());
  document.addEventListener("click", followLink);
  onChange();
}

function followLink(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || !match(url.pathname)) return;
  if (url.hash && url.pathname === location.pathname) return;
  if (reloadOnce()) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  checkBuild();
}

function checkBuild() {
  if (outdated) return;
  fetch(PROBE, { cache: "no-store" }).then(
    (response) => {
      outdated = response.status === 404;
      // Visible in the developer tools, and to the browser tests.
      document.documentElement.toggleAttribute("data-outdated", outdated);
    },
    () => {}, // offline: nothing learnt
  );
}

function reloadOnce() {
  if (!outdated || sessionStorage.getItem(RELOADED_FROM) === PROBE.pathname) return false;
  sessionStorage.setItem(RELOADED_FROM, PROBE.pathname);
  return true;
}

/** Where to go after signing in: the page that asked for it (`?next=`), if it is one of ours. */
export function nextPath() {
  const next = new URLSearchParams(location.search).get("next");
  if (!next?.startsWith("/") || next.startsWith("//")) return "/tasks";
  return match(new URL(next, location.origin).pathname) ? next : "/tasks";
}
