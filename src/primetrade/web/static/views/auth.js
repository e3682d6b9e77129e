// Signing in and registering.

import { api, request, signIn } from "../api.js";
import { navigate, nextPath } from "../router.js";
import { loadUser } from "../state.js";
import { append, h, icon } from "../ui.js";
import { busy, clearFormErrors, errorSummary, field, showFormErrors } from "../forms.js";

/** The centred card every signed-out page uses. */
export function authPage(main, { title, intro, flash }, ...content) {
  document.title = `${title} · PrimeTrade Tasks`;
  append(
    main,
    h(
      "div",
      { class: "auth" },
      h(
        "div",
        { class: "auth-brand" },
        h("span", { class: "brand-mark", "aria-hidden": "true" }, icon("check")),
        h("span", { class: "brand-name" }, "PrimeTrade ", h("span", {}, "Tasks")),
      ),
      h(
        "section",
        { class: "card auth-card", "aria-labelledby": "page-title" },
        h("h1", { id: "page-title", tabindex: "-1" }, title),
        intro && h("p", { class: "muted" }, intro),
        flash && notice(flash.kind, flash.text),
        content,
      ),
    ),
  );
}

/** A message box inside a form or card; errors are announced at once. */
export function notice(kind, ...content) {
  return h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" },
    icon(kind === "error" ? "alert" : "check"),
    h("div", {}, content),
  );
}

export function loginView(main, { flash }) {
  const message = h("div", { class: "form-message" });
  const email = field({
    label: "Email",
    name: "email",
    type: "email",
    autocomplete: "username",
    required: true,
    spellcheck: "false",
  });
  const password = field({
    label: "Password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Sign in");
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    errorSummary(),
    message,
    email,
    password,
    h("p", { class: "form-aside" }, h("a", { href: "/forgot-password" }, "Forgot your password?")),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    message.replaceChildren();
    clearFormErrors(form);
    await busy(submit, () => attemptSignIn(form, message, submit, values));
  });
  authPage(
    main,
    { title: "Sign in", intro: "Welcome back. Sign in to see your tasks.", flash },
    form,
    h(
      "p",
      { class: "auth-switch" },
      "New to PrimeTrade Tasks? ",
      h("a", { href: "/register" }, "Create an account"),
    ),
  );
  email.querySelector("input").focus();
}

async function attemptSignIn(form, message, submit, { email, password }) {
  try {
    await signIn(email.trim(), password);
    await loadUser();
    navigate(nextPath(), { replace: true });
  } catch (error) {
    if (error.status === 422) return showFormErrors(form, error);
    message.replaceChildren(signInProblem(error, email, submit));
  }
}

function signInProblem(error, email, submit) {
  if (error.status === 401) return notice("error", "The email or password is incorrect.");
  if (error.status === 429) return rateLimited(error, submit);
  if (error.code === "email_not_verified") {
    return notice("error", error.detail, " ", resendButton(email));
  }
  return notice("error", h("strong", {}, error.title), " ", error.detail);
}

/** "Try again in N seconds", counting down, with the submit button held until then. */
export function rateLimited(error, submit) {
  let seconds = error.retryAfter ?? 60;
  const count = h("span", {}, String(seconds));
  const box = notice("error", "Too many attempts. Try again in ", count, " seconds.");
  const hold = () => {
    submit.disabled = seconds > 0;
    if (seconds <= 0) return clearInterval(timer);
    seconds -= 1;
    count.textContent = String(seconds);
  };
  const timer = setInterval(hold, 1000);
  // After the form's own busy() has re-enabled the button.
  setTimeout(() => {
    submit.disabled = true;
  });
  return box;
}

export function resendButton(email) {
  const button = h("button", { type: "button", class: "btn-link" }, "Send the link again");
  button.addEventListener("click", async () => {
    try {
      const answer = await api.post("/auth/verify-email/resend", { email }, { auth: false });
      button.replaceWith(h("span", {}, answer.detail));
    } catch (error) {
      button.replaceWith(h("span", {}, error.detail || error.title));
    }
  });
  return button;
}

export function registerView(main, { flash }) {
  const message = h("div", { class: "form-message" });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary btn-block" },
    "Create account",
  );
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    errorSummary(),
    message,
    field({ label: "Full name (optional)", name: "full_name", autocomplete: "name" }),
    field({
      label: "Email",
      name: "email",
      type: "email",
      autocomplete: "email",
      required: true,
      spellcheck: "false",
    }),
    field({
      label: "Password",
      name: "password",
      type: "password",
      autocomplete: "new-password",
      required: true,
      hint: "At least 8 characters; a phrase is easier to remember.",
    }),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren();
    await busy(submit, () => register(form, message, submit));
  });
  authPage(
    main,
    { title: "Create your account", intro: "Plan, track and finish your work.", flash },
    form,
    h(
      "p",
      { class: "auth-switch" },
      "Already have an account? ",
      h("a", { href: "/login" }, "Sign in"),
    ),
  );
  form.querySelector("input").focus();
}

async function register(form, message, submit) {
  const values = Object.fromEntries(new FormData(form));
  const body = { email: values.email.trim(), password: values.password };
  if (values.full_name.trim()) body.full_name = values.full_name.trim();
  clearFormErrors(form);
  try {
    const { status } = await request("POST", "/auth/register", { body, auth: false });
    if (status === 202) return checkYourEmail(form, body.email);
    await signIn(body.email, body.password);
    await loadUser();
    navigate("/tasks", {
      replace: true,
      flash: { kind: "success", text: "Welcome! Add your first task below." },
    });
  } catch (error) {
    if (error.status === 429) return message.replaceChildren(rateLimited(error, submit));
    showFormErrors(form, fieldProblem(error, { email_taken: "email" }));
  }
}

/** A problem without field errors, pinned to the field its code concerns. */
export function fieldProblem(error, fields) {
  const name = fields[error.code];
  if (!name || error.errors.length > 0) return error;
  return Object.assign(error, { errors: [{ loc: [name], msg: error.detail }] });
}

function checkYourEmail(form, email) {
  form.replaceWith(
    notice(
      "success",
      h("strong", {}, "Check your email. "),
      `If ${email} can receive mail from us, a message explains what comes next: open its link to verify your address, then sign in.`,
    ),
    h("p", { class: "muted" }, "Nothing arrived? ", resendButton(email)),
  );
  document.getElementById("page-title").focus();
}
