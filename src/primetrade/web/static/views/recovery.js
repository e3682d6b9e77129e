// Getting back in: forgotten password, the reset link, and the email verification link.

import { api } from "../api.js";
import { navigate } from "../router.js";
import { state } from "../state.js";
import { h } from "../ui.js";
import { busy, clearFormErrors, errorSummary, field, showFormErrors } from "../forms.js";
import { authPage, notice, rateLimited, resendButton } from "./auth.js";

export function forgotPasswordView(main, { flash }) {
  const message = h("div", { class: "form-message" });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary btn-block" },
    "Send the link",
  );
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    errorSummary(),
    message,
    field({ label: "Email", name: "email", type: "email", autocomplete: "email", required: true }),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = new FormData(form).get("email").trim();
    clearFormErrors(form);
    message.replaceChildren();
    await busy(submit, async () => {
      try {
        const answer = await api.post("/auth/password-reset", { email }, { auth: false });
        message.replaceChildren(notice("success", answer.detail));
      } catch (error) {
        if (error.status === 429) return message.replaceChildren(rateLimited(error, submit));
        showFormErrors(form, error);
      }
    });
  });
  authPage(
    main,
    {
      title: "Reset your password",
      intro: "Enter your account's email and we'll send you a link to choose a new password.",
      flash,
    },
    form,
    h("p", { class: "auth-switch" }, h("a", { href: "/login" }, "Back to sign in")),
  );
  form.querySelector("input").focus();
}

export function resetPasswordView(main, { query, flash }) {
  const token = query.get("token");
  const page = { title: "Choose a new password", flash };
  if (!token) return authPage(main, page, invalidLink("This link is incomplete."));
  const message = h("div", { class: "form-message" });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary btn-block" },
    "Set the new password",
  );
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    errorSummary(),
    message,
    field({
      label: "New password",
      name: "new_password",
      type: "password",
      autocomplete: "new-password",
      hint: "At least 8 characters.",
    }),
    field({
      label: "Repeat the new password",
      name: "repeat",
      type: "password",
      autocomplete: "new-password",
    }),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    if (values.new_password !== values.repeat) {
      return showFormErrors(form, {
        status: 422,
        errors: [{ loc: ["repeat"], msg: "The two passwords differ" }],
      });
    }
    clearFormErrors(form);
    await busy(submit, async () => {
      try {
        await api.post(
          "/auth/password-reset/confirm",
          { token, new_password: values.new_password },
          { auth: false },
        );
        navigate("/login", {
          replace: true,
          flash: {
            kind: "success",
            text: "Your password has been changed. Sign in with the new one.",
          },
        });
      } catch (error) {
        if (error.code === "invalid_token") return form.replaceWith(invalidLink(error.detail));
        if (error.status === 429) return message.replaceChildren(rateLimited(error, submit));
        showFormErrors(form, error);
      }
    });
  });
  authPage(main, page, form);
}

function invalidLink(text) {
  return h(
    "div",
    { class: "stack" },
    notice("error", text, " Password reset links work once, for a limited time."),
    h("a", { href: "/forgot-password", class: "btn btn-primary btn-block" }, "Request a new link"),
  );
}

export function verifyEmailView(main, { query, flash }) {
  const result = h(
    "div",
    { class: "stack", "aria-live": "polite" },
    h("p", { class: "muted" }, "Verifying your address…"),
  );
  authPage(main, { title: "Verify your email", flash }, result);
  const token = query.get("token");
  if (!token) return result.replaceChildren(...resendForm("This link is incomplete."));
  verify(token, result);
}

async function verify(token, result) {
  try {
    await api.post("/auth/verify-email", { token }, { auth: false });
    const next = state.user ? ["/tasks", "Go to your tasks"] : ["/login", "Sign in"];
    result.replaceChildren(
      notice("success", "Your email address is verified."),
      h("a", { href: next[0], class: "btn btn-primary btn-block" }, next[1]),
    );
  } catch (error) {
    result.replaceChildren(...resendForm(error.detail || error.title));
  }
}

function resendForm(problem) {
  const slot = h("p", { class: "muted" });
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    field({ label: "Your email", name: "email", type: "email", autocomplete: "email" }),
    h("button", { type: "submit", class: "btn btn-block" }, "Send a new link"),
    slot,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = resendButton(new FormData(form).get("email").trim());
    slot.replaceChildren(button);
    button.click();
  });
  return [notice("error", problem), form];
}
