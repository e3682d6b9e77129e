// Who is signed in. Views read `state.user`; a change is announced with a "userchange" event
// so the header can follow (a new name, a sign-out).

import { api } from "./api.js";

export const state = { user: null };

export function setUser(user) {
  state.user = user;
  document.dispatchEvent(new CustomEvent("userchange"));
}

export async function loadUser() {
  setUser(await api.get("/users/me"));
  return state.user;
}

export function isAdmin() {
  return state.user?.role === "admin";
}
