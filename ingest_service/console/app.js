// The console's entry: sign-in with the admin token, sign-out, and the two pages, chosen by
// the URL's fragment (#/ lists the sources, #/sources/<id> shows one), so every page has a
// link of its own and the back button works, with no server-side routing.

import {api, session, whenTokenRefused} from "./api.js";
import {fill} from "./dom.js";
import {sourcePage} from "./source_page.js";
import {sourcesPage} from "./sources_page.js";
import {announce} from "./widgets.js";

const signIn = document.getElementById("sign-in");
const form = document.getElementById("sign-in-form");
const tokenInput = document.getElementById("token");
const signInError = document.getElementById("sign-in-error");
const view = document.getElementById("view");
const nav = document.getElementById("topnav");

let page = null;

function leavePage() {
  page?.dispose();
  page = null;
}

function showSignIn(message = "") {
  leavePage();
  fill(view);
  view.hidden = true;
  nav.hidden = true;
  signIn.hidden = false;
  fill(signInError, message);
  document.title = "Sign in · sendgrid-source console";
  tokenInput.focus();
}

function route() {
  if (!session.token()) {
    showSignIn();
    return;
  }
  leavePage();
  signIn.hidden = true;
  nav.hidden = false;
  view.hidden = false;
  const match = window.location.hash.match(/^#\/sources\/([^/]+)$/);
  if (match) {
    page = sourcePage(view, decodeURIComponent(match[1]));
  } else {
    document.title = "Sources · sendgrid-source console";
    page = sourcesPage(view);
  }
  // Keyboard and screen-reader users land on the new page's heading.
  view.querySelector("h1")?.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) {
    fill(signInError, "Enter the admin token.");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  fill(signInError, "");
  try {
    await api("sources", {token}); // the cheapest admin call: is this token right?
    session.signIn(token);
    tokenInput.value = "";
    route();
  } catch (error) {
    fill(signInError, error.status === 401 ? `Not signed in: ${error.message}.` : `Not signed in: ${error.message}`);
    tokenInput.select();
  } finally {
    button.disabled = false;
  }
});

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  showSignIn();
  announce("Signed out: the token is forgotten.");
});

whenTokenRefused((error) => {
  session.signOut();
  showSignIn(`Signed out: the service refused the token (${error.message}). Sign in again.`);
});

window.addEventListener("hashchange", route);
route();
