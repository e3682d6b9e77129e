// /profile: your name and email, your password, the emails you get, your other sessions.

import { api } from "../api.js";
import { setUser, state } from "../state.js";
import { append, h, showError, toast } from "../ui.js";
import { busy, clearFormErrors, errorSummary, field, showFormErrors } from "../forms.js";
import { formatLongDate } from "../format.js";
import { fieldProblem } from "./auth.js";

const NOTIFICATIONS = [
  ["due_reminders", "Due-date reminders", "An email shortly before a task is due."],
  ["daily_digest", "Daily digest", "Each morning: what is overdue and what is due today."],
  ["weekly_report", "Weekly report", "Each week: what you created and finished."],
];

export function profileView(main) {
  document.title = "Profile · PrimeTrade Tasks";
  const user = state.user;
  append(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Profile"),
      h(
        "p",
        { class: "muted page-note" },
        `${user.role === "admin" ? "Administrator" : "Member"} since ${formatLongDate(user.created_at)}`,
      ),
    ),
    h(
      "div",
      { class: "settings" },
      section(
        "Your details",
        "Your name appears in the header; your email is how you sign in.",
        detailsForm(),
      ),
      section("Password", "Changing it signs you out everywhere else.", passwordForm()),
      section("Email notifications", "Choose the emails we send you.", notificationsForm()),
      section(
        "Sessions",
        "Signed in on a shared or lost device? End every session except this one.",
        sessionsBlock(),
      ),
    ),
  );
}

function section(title, intro, content) {
  const id = `section-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return h(
    "section",
    { class: "card settings-card", "aria-labelledby": id },
    h(
      "div",
      { class: "settings-intro" },
      h("h2", { id }, title),
      h("p", { class: "muted" }, intro),
    ),
    h("div", { class: "settings-body" }, content),
  );
}

function detailsForm() {
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Save details");
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    errorSummary(),
    field({
      label: "Full name",
      name: "full_name",
      autocomplete: "name",
      value: state.user.full_name ?? "",
    }),
    field({
      label: "Email",
      name: "email",
      type: "email",
      autocomplete: "email",
      value: state.user.email,
    }),
    field({
      label: "Current password",
      name: "current_password",
      type: "password",
      autocomplete: "current-password",
      hint: "Needed only to change your email.",
    }),
    h("div", {}, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    const changes = {};
    if (values.full_name.trim() !== (state.user.full_name ?? ""))
      changes.full_name = values.full_name.trim();
    if (values.email.trim() !== state.user.email) {
      changes.email = values.email.trim();
      changes.current_password = values.current_password;
    }
    clearFormErrors(form);
    if (Object.keys(changes).length === 0) return toast("Nothing to save: no detail changed.");
    await busy(submit, async () => {
      try {
        setUser(await api.patch("/users/me", changes));
        form.elements.namedItem("current_password").value = "";
        toast("Your details are saved.", { kind: "success" });
      } catch (error) {
        showFormErrors(form, fieldProblem(error, { email_taken: "email" }));
      }
    });
  });
  return form;
}

function passwordForm() {
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Change password");
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    errorSummary(),
    h("input", {
      type: "email",
      name: "username",
      autocomplete: "username",
      value: state.user.email,
      hidden: true,
    }),
    field({
      label: "Current password",
      name: "current_password",
      type: "password",
      autocomplete: "current-password",
    }),
    field({
      label: "New password",
      name: "new_password",
      type: "password",
      autocomplete: "new-password",
      hint: "At least 8 characters.",
    }),
    h("div", {}, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { current_password, new_password } = Object.fromEntries(new FormData(form));
    clearFormErrors(form);
    await busy(submit, async () => {
      try {
        await api.post("/users/me/password", { current_password, new_password });
        form.reset();
        toast("Your password is changed; your other sessions were signed out.", {
          kind: "success",
        });
      } catch (error) {
        showFormErrors(form, error);
      }
    });
  });
  return form;
}

function notificationsForm() {
  const boxes = NOTIFICATIONS.map(([name, label, hint]) =>
    h(
      "label",
      { class: "switch-row" },
      h("input", { type: "checkbox", name, disabled: true, "aria-describedby": `hint-${name}` }),
      h(
        "span",
        {},
        h("span", { class: "switch-label" }, label),
        h("span", { class: "hint", id: `hint-${name}` }, hint),
      ),
    ),
  );
  const form = h("form", { class: "stack-tight", "aria-label": "Email notifications" }, boxes);
  api
    .get("/users/me/notifications")
    .then((settings) => fill(form, settings))
    .catch(showError);
  form.addEventListener("change", async (event) => {
    const box = event.target;
    box.disabled = true;
    try {
      fill(form, await api.patch("/users/me/notifications", { [box.name]: box.checked }));
      toast(
        `${NOTIFICATIONS.find(([name]) => name === box.name)[1]}: ${box.checked ? "on" : "off"}.`,
        { kind: "success" },
      );
    } catch (error) {
      box.checked = !box.checked;
      box.disabled = false;
      showError(error);
    }
  });
  return form;
}

function fill(form, settings) {
  for (const [name] of NOTIFICATIONS) {
    const box = form.elements.namedItem(name);
    box.checked = Boolean(settings[name]);
    box.disabled = false;
  }
}

function sessionsBlock() {
  const button = h("button", { type: "button", class: "btn" }, "Sign out other devices");
  button.addEventListener("click", () =>
    busy(button, async () => {
      try {
        await api.delete("/users/me/sessions");
        toast("Every other session is signed out. This one stays.", { kind: "success" });
      } catch (error) {
        showError(error);
      }
    }),
  );
  return h("div", {}, button);
}
