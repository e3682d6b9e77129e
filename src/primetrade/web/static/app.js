// The web app's entry point: restore the session, draw the header, route every page.

import { onSessionExpired, restoreSession, signOut } from "./api.js";
import { match, navigate, nextPath, route, start, takeFlash } from "./router.js";
import { isAdmin, loadUser, setUser, state } from "./state.js";
import { clear, h, icon, showError } from "./ui.js";
import { adminUserView } from "./views/admin-user.js";
import { adminUsersView } from "./views/admin-users.js";
import { loginView, registerView } from "./views/auth.js";
import { boardView } from "./views/board.js";
import { forbiddenView, notFoundView } from "./views/errors.js";
import { listView } from "./views/list.js";
import { profileView } from "./views/profile.js";
import { forgotPasswordView, resetPasswordView, verifyEmailView } from "./views/recovery.js";
import { statsView } from "./views/stats.js";

const EXPIRED = { kind: "info", text: "Your session has expired, sign in again." };

route("/", null, { redirect: () => (state.user ? "/tasks" : "/login") });
route("/login", loginView, { access: "guest" });
route("/register", registerView, { access: "guest" });
route("/forgot-password", forgotPasswordView);
route("/reset-password", resetPasswordView);
route("/verify-email", verifyEmailView);
route("/tasks", listView, { access: "user" });
route("/board", boardView, { access: "user" });
route("/stats", statsView, { access: "user" });
route("/profile", profileView, { access: "user" });
route("/admin", null, { redirect: () => "/admin/users" });
route("/admin/users", adminUsersView, { access: "admin" });
route("/admin/users/:id", adminUserView, { access: "admin" });

// The list and the board are two layouts of one section, switched inside the page.
const NAV = [
  ["/tasks", "Tasks", "list", ["/tasks", "/board"]],
  ["/stats", "Stats", "chart", ["/stats"]],
];
const ADMIN_NAV = ["/admin/users", "Admin", "shield", ["/admin"]];

let current = null;
let firstRender = true;

function render() {
  const found = match(location.pathname);
  const flash = takeFlash();
  const here = location.pathname + location.search;
  if (found?.route.redirect) return navigate(found.route.redirect(), { replace: true, flash });
  const access = found?.route.access;
  if ((access === "user" || access === "admin") && !state.user) {
    return navigate(`/login?next=${encodeURIComponent(here)}`, { replace: true, flash });
  }
  if (access === "guest" && state.user) return navigate(nextPath(), { replace: true });
  let view = found ? found.route.handler : notFoundView;
  if (access === "admin" && !isAdmin()) view = forbiddenView;
  const context = {
    params: found?.params ?? {},
    query: new URLSearchParams(location.search),
    flash,
  };
  if (current?.view === view && current.path === location.pathname && current.instance.update) {
    current.instance.update(context);
  } else {
    mount(view, context);
  }
  drawHeader();
}

function mount(view, context) {
  current?.instance.destroy?.();
  const main = document.getElementById("main");
  main.replaceChildren();
  current = { view, path: location.pathname, instance: view(main, context) ?? {} };
  if (!firstRender) (main.querySelector("h1") ?? main).focus({ preventScroll: true });
  window.scrollTo(0, 0);
  firstRender = false;
}

function drawHeader() {
  const header = document.getElementById("topbar");
  header.hidden = !state.user;
  if (!state.user) return header.replaceChildren();
  const links = isAdmin() ? [...NAV, ADMIN_NAV] : NAV;
  const section = `/${location.pathname.split("/")[1]}`;
  clear(
    header,
    h(
      "div",
      { class: "topbar-inner" },
      h(
        "a",
        { href: "/tasks", class: "brand" },
        h("span", { class: "brand-mark", "aria-hidden": "true" }, icon("check")),
        h("span", { class: "brand-name" }, "PrimeTrade ", h("span", {}, "Tasks")),
      ),
      h(
        "nav",
        { class: "nav", "aria-label": "Main" },
        links.map(([path, label, name, sections]) =>
          h(
            "a",
            {
              href: path,
              class: "nav-link",
              "aria-current": sections.includes(section) ? "page" : null,
            },
            icon(name),
            h("span", {}, label),
          ),
        ),
      ),
      h(
        "div",
        { class: "account" },
        h(
          "a",
          {
            href: "/profile",
            class: "nav-link account-link",
            "aria-current": section === "/profile" ? "page" : null,
          },
          h("span", { class: "avatar", "aria-hidden": "true" }, initials(state.user)),
          h("span", { class: "account-name" }, state.user.full_name || state.user.email),
        ),
        h(
          "button",
          { type: "button", class: "btn btn-ghost", "aria-label": "Sign out", onClick: endSession },
          icon("logout"),
          h("span", { class: "hide-narrow" }, "Sign out"),
        ),
      ),
    ),
  );
}

function initials(user) {
  const source = user.full_name || user.email;
  return source
    .split(/[\s@._-]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((part) => part[0].toUpperCase())
    .join("");
}

async function endSession() {
  try {
    await signOut();
  } catch (error) {
    showError(error);
  }
  setUser(null);
  navigate("/login", { flash: { kind: "success", text: "You are signed out." } });
}

onSessionExpired(() => {
  if (!state.user) return;
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close("expired");
  setUser(null);
  const here = location.pathname + location.search;
  navigate(`/login?next=${encodeURIComponent(here)}`, { replace: true, flash: EXPIRED });
});
document.addEventListener("userchange", drawHeader);

async function boot() {
  try {
    if (await restoreSession()) await loadUser();
  } catch (error) {
    showError(error);
  }
  start(render);
}

boot();
