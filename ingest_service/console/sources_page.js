// The first page: every source, one row each, with its health and why, its last event, its
// events over the last 24 hours and its last sync (GET /overview). Refreshed every 30 s.

import {api} from "./api.js";
import {h, fill} from "./dom.js";
import {number, percent} from "./format.js";
import {healthBadge, section, statusBadge, timeAgo} from "./widgets.js";

const REFRESH_MS = 30_000;

function eventsLast24h(source) {
  return Object.values(source.webhook?.events_last_24h ?? {}).reduce((sum, n) => sum + n, 0);
}

// The last complete day's ratio, shown once a source's JSON carries `completeness`
// ({"day": "YYYY-MM-DD", "ratio": 0.998}); no column at all while none does.
function completenessCell(source) {
  const c = source.completeness;
  if (!c) return h("td", {"data-label": "Complete"}, h("span", {class: "muted"}, "–"));
  const ratio = c.ratio ?? c.worst_ratio;
  return h("td", {"data-label": "Complete", class: "num"},
    ratio === undefined || ratio === null ? "–" : percent(ratio), c.day ? h("span", {class: "sub"}, ` ${c.day}`) : null);
}

function lastSyncCell(row) {
  const finished = row.last_finished_run;
  const running = row.last_run?.status === "running" ? row.last_run : null;
  if (row.runs_error) return h("td", {"data-label": "Last sync"}, h("span", {class: "muted"}, "unknown"));
  return h("td", {"data-label": "Last sync"},
    finished ? [statusBadge(finished.status), " ", timeAgo(finished.finished_at)] : h("span", {class: "muted"}, "never"),
    running ? h("span", {class: "sub running-note"}, " · a sync is running") : null);
}

function sourceRow(row, withCompleteness) {
  const {source, health} = row;
  const worst = health.reasons.find((r) => r.level === health.status);
  return h("tr", {dataset: {sourceId: source.id}},
    h("td", {"data-label": "Health"}, healthBadge(health)),
    h("th", {scope: "row", "data-label": "Source"},
      h("a", {href: `#/sources/${encodeURIComponent(source.id)}`, class: "source-link"}, source.name),
      health.status !== "green" && worst ? h("span", {class: "reason"}, worst.text) : null),
    h("td", {"data-label": "Last event"}, timeAgo(source.webhook?.last_event_at)),
    h("td", {"data-label": "Events, 24 h", class: "num"}, number(eventsLast24h(source))),
    lastSyncCell(row),
    withCompleteness ? completenessCell(source) : null);
}

export function sourcesPage(view) {
  const list = section("sources", "Sources",
    h("p", {class: "lede"}, "Each SendGrid account this service receives events from and syncs. ",
      "Healthy: events in the last hour, or a quiet account whose webhook check found it right. ",
      "Attention: webhook drift, silence, a collection not read. ",
      "Failing: webhook deleted or disabled, or the last sync failed."));
  const updated = h("p", {class: "updated muted", "aria-live": "off"});
  const refresh = h("button", {type: "button", onclick: () => load()}, "Refresh");
  fill(view, h("div", {class: "page-head"}, h("h1", {tabindex: "-1"}, "Sources"), h("div", {class: "toolbar"}, refresh)),
    updated, list.element);
  let timer = null;
  let disposed = false;

  async function load() {
    clearTimeout(timer);
    try {
      const overview = await api("overview");
      if (disposed) return;
      list.error(null);
      render(overview);
    } catch (error) {
      if (disposed) return;
      list.error(`The sources could not be read: ${error.message}`);
    }
    if (!disposed) timer = setTimeout(load, REFRESH_MS);
  }

  function render(overview) {
    fill(updated, "Updated ", timeAgo(overview.checked_at));
    if (!overview.sources.length) {
      fill(list.body, h("p", {class: "empty"}, "No source yet. Register one with ",
        h("code", {}, "sendgrid-source sources add NAME --configure-webhook"), " or ", h("code", {}, "POST /sources"), "."));
      return;
    }
    const withCompleteness = overview.sources.some((row) => row.source.completeness !== undefined);
    fill(list.body, h("div", {class: "table-scroll"}, h("table", {class: "sources cards-on-phone", id: "sources-table"},
      h("thead", {}, h("tr", {}, ["Health", "Source", "Last event", "Events, 24 h", "Last sync"]
        .concat(withCompleteness ? ["Complete, last day"] : [])
        .map((label) => h("th", {scope: "col"}, label)))),
      h("tbody", {}, overview.sources.map((row) => sourceRow(row, withCompleteness))))));
  }

  load();
  return {
    dispose() {
      disposed = true;
      clearTimeout(timer);
    },
  };
}
