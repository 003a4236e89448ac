// Small pieces every page uses: badges (a word and a shape, never colour alone), a section
// with its own error line, the status toast, and modal dialogs for the actions.

import {h, fill} from "./dom.js";
import {age, moment} from "./format.js";

const HEALTH = {
  green: {icon: "●", label: "Healthy"},
  amber: {icon: "▲", label: "Attention"},
  red: {icon: "■", label: "Failing"},
};

export function healthBadge(health) {
  const {icon, label} = HEALTH[health.status] ?? {icon: "?", label: health.status};
  return h("span", {class: `badge health-${health.status}`, dataset: {health: health.status}},
    h("span", {"aria-hidden": "true"}, icon), ` ${label}`);
}

// Run, collection and backfill statuses are shown in the ledger's own words; known ones get a shape.
const STATUS_ICONS = {
  succeeded: "✓", empty: "○", skipped: "–", running: "↻", interrupted: "‖", partial: "◐", forbidden: "⊘",
  failed: "✕",
};
const STATUS_TONES = {
  succeeded: "good", empty: "good", skipped: "neutral", running: "neutral",
  interrupted: "warn", partial: "warn", forbidden: "warn", failed: "bad",
};

export function statusBadge(status) {
  return h("span", {class: `badge tone-${STATUS_TONES[status] ?? "neutral"}`, dataset: {status}},
    h("span", {"aria-hidden": "true"}, STATUS_ICONS[status] ?? "•"), ` ${status}`);
}

/** <time> showing an age (3 min ago), the local moment in its title. */
export function timeAgo(iso, never = "never") {
  if (!iso) return h("span", {class: "muted"}, never);
  return h("time", {datetime: iso, title: moment(iso)}, age(iso));
}

/** A titled section whose body is filled later; `error(message)` shows what failed. */
export function section(id, title, ...intro) {
  const body = h("div", {class: "section-body"});
  const problem = h("p", {class: "section-error", role: "alert", hidden: true});
  const element = h("section", {class: "panel", id, "aria-labelledby": `${id}-title`},
    h("h2", {id: `${id}-title`}, title), intro, problem, body);
  return {
    element,
    body,
    error(message) {
      problem.hidden = !message;
      fill(problem, message ?? "");
    },
  };
}

let statusTimer;
/** Tell what just happened, in the live region (read out by screen readers). */
export function announce(message, tone = "info") {
  const status = document.getElementById("status");
  status.dataset.tone = tone;
  fill(status, message);
  status.classList.add("shown");
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => status.classList.remove("shown"), tone === "error" ? 12000 : 6000);
}

/**
 * A modal dialog with a form: `fields` are elements, `submit(form)` runs the action and
 * returns what to show afterwards (or throws an Error whose message is shown in the dialog).
 * Escape and Cancel close it; focus returns to the button that opened it.
 */
export function formDialog({title, description, fields, submitLabel, submit, busyLabel}) {
  const problem = h("p", {class: "form-error", role: "alert"});
  const result = h("div", {class: "dialog-result", "aria-live": "polite"});
  const submitButton = h("button", {type: "submit", class: "primary"}, submitLabel);
  const cancel = h("button", {type: "button"}, "Cancel");
  const form = h("form", {method: "post", novalidate: true},
    h("h2", {}, title), description, fields, problem, result,
    h("div", {class: "dialog-buttons"}, cancel, submitButton));
  const dialog = h("dialog", {class: "dialog", "aria-label": title}, form);
  const opener = document.activeElement;
  const close = () => {
    dialog.close();
    dialog.remove();
    if (opener instanceof HTMLElement) opener.focus();
  };
  cancel.addEventListener("click", close);
  dialog.addEventListener("close", () => dialog.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problem, "");
    fill(result, "");
    submitButton.disabled = true;
    const label = submitButton.textContent;
    submitButton.textContent = busyLabel ?? "Working…";
    try {
      const shown = await submit(form);
      fill(result, shown ?? "");
      fill(cancel, "Close");
      submitButton.hidden = true;
      cancel.focus();
    } catch (error) {
      fill(problem, error.message);
    } finally {
      submitButton.disabled = false;
      submitButton.textContent = label;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** The warnings an answer carried, as a list (or a line saying there were none). */
export function warningsList(warnings, none) {
  if (!warnings?.length) return h("p", {class: "ok-line"}, none);
  return h("div", {}, h("p", {}, "Done, with warnings:"),
    h("ul", {class: "warnings"}, warnings.map((w) => h("li", {}, w))));
}
