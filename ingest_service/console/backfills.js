// A source's backfills from SendGrid's Email Logs (GET /sources/{id}/backfills), newest
// first: each one's status, trigger, range of message creation times, progress while it runs
// or waits to be resumed, its counts in the ledger's words, and its error.

import {h} from "./dom.js";
import {duration, moment, number, percent} from "./format.js";
import {statusBadge} from "./widgets.js";

// The counts always shown, then those shown only when they are not zero: a message gone
// before it was read, or one holding SendGrid's maximum of 100 events, is worth a look.
const COUNTS = [
  ["messages_read", "Messages read"],
  ["events_stored", "Events stored"],
  ["duplicates", "Duplicates"],
  ["rejected", "Rejected"],
];
const COUNTS_WHEN_ANY = [
  ["messages_missing", "Messages missing"],
  ["messages_truncated", "Messages truncated"],
];

function when(iso) {
  return h("time", {datetime: iso, title: iso}, moment(iso));
}

function count(name, label, value) {
  return h("div", {class: "count", dataset: {count: name}}, h("dt", {}, label), h("dd", {}, number(value)));
}

/** The share of the range read, as a progress bar with its words beside it. */
function progressBar(backfill) {
  // One decimal, and never 100 % before the whole range is read.
  const shown = Math.min(Math.round(backfill.progress * 1000) / 10, backfill.progress < 1 ? 99.9 : 100);
  return h("div", {class: "backfill-progress"},
    h("progress", {max: 100, value: shown, "aria-valuenow": shown,
      "aria-valuetext": `${percent(shown / 100)} of the range read`,
      "aria-label": "Share of the range read"}),
    h("span", {class: "progress-words"}, `${percent(shown / 100)} read, up to `, when(backfill.reached)));
}

function backfillItem(backfill) {
  const took = backfill.finished_at ? ` · took ${duration(backfill.started_at, backfill.finished_at)}` : "";
  const waiting = backfill.status === "running" || backfill.status === "interrupted";
  const counts = [
    ...COUNTS.map(([name, label]) => count(name, label, backfill[name])),
    ...COUNTS_WHEN_ANY.filter(([name]) => backfill[name]).map(([name, label]) => count(name, label, backfill[name])),
  ];
  return h("li", {class: "backfill", dataset: {backfillId: backfill.id, status: backfill.status}},
    h("p", {class: "backfill-head"},
      statusBadge(backfill.status),
      h("span", {class: "run-when"}, when(backfill.started_at)),
      h("span", {class: "muted backfill-trigger"}, `${backfill.trigger}${took}`)),
    h("p", {class: "backfill-range"}, "Messages created ", when(backfill.since), " → ", when(backfill.until)),
    backfill.repair_days?.length ? h("p", {class: "backfill-repair"}, `Repairs ${backfill.repair_days.join(", ")}`) : null,
    waiting ? progressBar(backfill) : null,
    h("dl", {class: "backfill-counts"}, counts),
    backfill.shortfall ? h("p", {class: "backfill-shortfall"}, h("strong", {}, "Not listed whole: "), backfill.shortfall) : null,
    backfill.error
      ? h("p", {class: "run-error-full"}, h("strong", {}, backfill.status === "interrupted" ? "Stopped: " : "Error: "), backfill.error)
      : null);
}

/** The list, or what a backfill is when there is none yet. */
export function backfillsList(list) {
  if (!list.length) {
    return h("p", {class: "empty", id: "backfills-empty"},
      "No backfill yet. A backfill reads the events SendGrid kept for this account's messages ",
      "of the last 30 days and stores those not stored yet (an event the webhook stored already is ",
      "not stored twice). It needs SendGrid's Email Logs, which keeps 30 days of events.");
  }
  return h("ol", {class: "backfills", id: "backfills-list"}, list.map(backfillItem));
}
