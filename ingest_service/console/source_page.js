// One source: its health and why, the actions, the two charts with their table views, the
// run history (each run opens to its collections, in the ledger's words), its backfills from
// Email Logs, the webhook and the latest rejected events. Everything is refreshed every 30 s,
// the runs and the backfills every 2 s while one of them is running.

import {api} from "./api.js";
import {backfill, configureWebhook, checkWebhook, rotateApiKey, setVerificationKey, syncNow} from "./actions.js";
import {backfillsList} from "./backfills.js";
import {collectionsChart, collectionsTable, hourlyChart, hourlyTable} from "./charts.js";
import {h, fill} from "./dom.js";
import {duration, interval, moment, number, percent} from "./format.js";
import {announce, healthBadge, section, statusBadge, timeAgo} from "./widgets.js";

const REFRESH_MS = 30_000;
const RUNNING_REFRESH_MS = 2_000;
const HOURS = 48;
const RUNS = 20;
const BACKFILLS = 20;
const REJECTED = 20;
const LEVEL_ICONS = {red: "■", amber: "▲", green: "●"};

function fact(label, ...value) {
  return h("div", {class: "fact"}, h("dt", {}, label), h("dd", {}, value));
}

function copyButton(input) {
  return h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(input.value);
        announce("Webhook URL copied.");
      } catch {
        input.focus();
        input.select();
        announce("Select-all done: press Ctrl+C (⌘C) to copy the URL.");
      }
    },
  }, "Copy");
}

function runDetails(run, open) {
  const collections = run.collections.length
    ? h("div", {class: "table-scroll"}, h("table", {class: "numbers run-collections"},
      h("thead", {}, h("tr", {}, ["collection", "api", "status", "rows upserted", "rows deleted", "message", "took"]
        .map((label) => h("th", {scope: "col", class: label.startsWith("rows") ? "num" : null}, label)))),
      h("tbody", {}, run.collections.map((c) => h("tr", {dataset: {collection: c.collection}},
        h("th", {scope: "row"}, c.collection),
        h("td", {}, c.api ?? "–"),
        h("td", {}, statusBadge(c.status)),
        h("td", {class: "num"}, number(c.rows_upserted)),
        h("td", {class: "num"}, number(c.rows_deleted)),
        h("td", {class: "message"}, c.message ?? ""),
        h("td", {}, duration(c.started_at, c.finished_at)))))))
    : h("p", {class: "muted"}, run.status === "running" ? "No collection finished yet." : "No collection was recorded.");
  const took = run.finished_at ? `, took ${duration(run.started_at, run.finished_at)}` : "";
  return h("details", {class: "run", open, dataset: {runId: run.id, status: run.status}},
    h("summary", {},
      statusBadge(run.status), " ",
      h("span", {class: "run-when"}, h("time", {datetime: run.started_at}, moment(run.started_at))),
      h("span", {class: "muted"}, ` ${run.trigger}${took} · ${run.collections.length} collections`),
      run.error ? h("span", {class: "run-error"}, run.error) : null),
    collections,
    run.error ? h("p", {class: "run-error-full"}, h("strong", {}, "Error: "), run.error) : null);
}

function findingsTable(source) {
  const m = source.webhook_management;
  const drift = source.webhook?.drift ?? [];
  if (!drift.length) {
    if (!m?.managed && !source.webhook_signed) {
      return h("p", {class: "muted"}, "Not watched: configure the webhook, or set its verification key, to have it checked.");
    }
    if (!m?.checked_at) return h("p", {class: "muted"}, "Not checked yet: it is checked after each sync, or press Check webhook.");
    return h("p", {class: "ok-line"}, "The last check found nothing wrong.");
  }
  return h("div", {class: "table-scroll"}, h("table", {class: "numbers", id: "findings-table"},
    h("thead", {}, h("tr", {}, ["finding", "detail", "first seen", "last seen", "repaired"]
      .map((label) => h("th", {scope: "col"}, label)))),
    h("tbody", {}, drift.map((f) => h("tr", {dataset: {finding: f.finding}},
      h("th", {scope: "row"}, f.finding),
      h("td", {}, f.detail),
      h("td", {}, timeAgo(f.first_seen_at)),
      h("td", {}, timeAgo(f.last_seen_at)),
      h("td", {}, f.repaired_at ? timeAgo(f.repaired_at) : "–"))))));
}

function rejectedList(rejected) {
  if (!rejected.events.length) return h("p", {class: "ok-line"}, "Nothing was rejected.");
  return h("ol", {class: "rejected", id: "rejected-list"}, rejected.events.map((event) => h("li", {dataset: {id: event.id}},
    h("p", {class: "rejected-head"}, timeAgo(event.received_at), " · ",
      h("span", {class: "muted"}, event.event ? `claimed type ${event.event}` : "no event type"), " · ",
      h("span", {class: "muted"}, `${number(event.payload_bytes)} bytes`)),
    h("p", {class: "rejected-reason"}, h("strong", {}, "Reason: "), event.reason),
    h("details", {}, h("summary", {}, event.truncated ? `Payload (first ${number(event.payload_preview.length)} characters)` : "Payload"),
      h("pre", {class: "payload"}, event.payload_preview)))));
}

export function sourcePage(view, sourceId) {
  const path = `sources/${encodeURIComponent(sourceId)}`;
  const title = h("h1", {tabindex: "-1"}, "Source");
  const badge = h("span", {class: "head-badge"});
  const reasons = h("ul", {class: "reasons", id: "health-reasons"});
  const actions = h("div", {class: "toolbar actions", role: "group", "aria-label": "Actions"});
  const facts = h("dl", {class: "facts"});
  const pageError = h("p", {class: "section-error", role: "alert", hidden: true});
  const hourly = section("hourly", `Events per hour, last ${HOURS} h`,
    h("p", {class: "lede"}, "By event type, as received (UTC hours shown in local time)."));
  const collections = section("collections", "Rows per collection, last syncs",
    h("p", {class: "lede"}, "Rows each sync run wrote (new or changed), per collection."));
  const runs = section("runs", "Sync runs", h("p", {class: "lede"}, "Newest first; open a run for its collections."));
  const backfills = section("backfills", "Backfills from Email Logs",
    h("p", {class: "lede"}, "Newest first: the range of message creation times each one reads, and what it stored."));
  const webhook = section("webhook", "Webhook");
  const rejected = section("rejected", "Rejected events",
    h("p", {class: "lede"}, "What could not be stored as an event, newest first, with the reason."));
  fill(view,
    h("p", {class: "crumbs"}, h("a", {href: "#/"}, "← Sources")),
    h("div", {class: "page-head"}, title, badge),
    pageError, reasons, actions, facts,
    h("div", {class: "chart-grid"}, hourly.element, collections.element),
    runs.element, backfills.element, webhook.element, rejected.element);

  const charts = {hourly: null, collections: null};
  const openRuns = new Set();
  let current = null; // the source overview
  let lastRuns = [];
  let lastBackfills = [];
  let timer = null;
  let disposed = false;
  const isRunning = (entry) => entry.status === "running";

  function replaceChart(name, made) {
    charts[name]?.destroy();
    charts[name] = made.chart;
    return made.element;
  }

  function tableView(id, label, table) {
    const details = h("details", {class: "table-view", id}, h("summary", {}, label), h("div", {class: "table-scroll"}, table));
    return details;
  }

  function renderOverview(row) {
    current = row;
    const {source, health} = row;
    document.title = `${source.name} · sendgrid-source console`;
    fill(title, source.name);
    fill(badge, healthBadge(health));
    fill(reasons, health.reasons.map((r) => h("li", {class: `reason-${r.level}`, dataset: {level: r.level}},
      h("span", {"aria-hidden": "true"}, `${LEVEL_ICONS[r.level]} `), r.text)));
    const w = source.webhook;
    const last24h = Object.values(w?.events_last_24h ?? {}).reduce((a, b) => a + b, 0);
    const finished = row.last_finished_run;
    fill(facts,
      fact("Last event", timeAgo(w?.last_event_at)),
      fact("Events, 24 h", number(last24h)),
      fact("Events stored", number(w?.events_stored ?? 0)),
      fact("Duplicates absorbed", number(w?.duplicates_absorbed ?? 0)),
      fact("Rejected", number(w?.rejected ?? 0)),
      fact("Last sync", finished ? [statusBadge(finished.status), " ", timeAgo(finished.finished_at)] : (row.runs_error ? "unknown" : "never")),
      source.completeness ? fact("Complete, last day",
        source.completeness.ratio ?? source.completeness.worst_ratio ? percent(source.completeness.ratio ?? source.completeness.worst_ratio) : "–",
        source.completeness.day ? ` (${source.completeness.day})` : "") : null,
      fact("Schema", h("code", {}, source.schema)),
      fact("Region", source.region),
      fact("Sync every", interval(source.sync_interval_seconds)));
    renderActions();
    renderWebhook(source);
  }

  function renderActions() {
    const running = lastRuns.some(isRunning) || current?.last_run?.status === "running";
    const backfilling = lastBackfills.some(isRunning);
    const source = current.source;
    fill(actions,
      h("button", {type: "button", class: "primary", id: "sync-now", disabled: running,
        onclick: () => syncNow(source, afterSyncStarted)}, running ? "Sync running…" : "Sync now"),
      h("button", {type: "button", id: "backfill", disabled: backfilling,
        onclick: () => backfill(source, backfillsFollower.follow)}, backfilling ? "Backfill running…" : "Backfill the last 30 days"),
      h("button", {type: "button", id: "configure-webhook", onclick: () => configureWebhook(source, reload)}, "Configure webhook"),
      h("button", {type: "button", id: "check-webhook", onclick: (e) => checkWebhook(source, e.currentTarget, reload)}, "Check webhook"),
      h("button", {type: "button", id: "rotate-key", onclick: () => rotateApiKey(source, reload)}, "Rotate API key"),
      h("button", {type: "button", id: "verification-key", onclick: () => setVerificationKey(source, reload)}, "Set verification key"));
  }

  function renderWebhook(source) {
    const url = h("input", {type: "text", readonly: true, value: source.webhook_url, id: "webhook-url",
      "aria-label": "Webhook URL", spellcheck: "false"});
    const m = source.webhook_management;
    fill(webhook.body,
      h("div", {class: "url-row"}, url, copyButton(url)),
      h("p", {class: "hint"}, "Paste it as the Post URL of the Event Webhook in SendGrid, or press Configure webhook. ",
        "It holds the source's token: treat it as a secret."),
      h("dl", {class: "facts compact"},
        fact("Signed", source.webhook_signed ? "yes: signatures are verified" : "no: events are not signature-checked"),
        fact("Managed", m?.managed ? `yes, ${m.origin} (webhook ${m.webhook_id})` : "no: set up by hand, or not yet"),
        m?.managed ? fact("Test batch", m.test_status ?? "not sent", m.tested_at ? [" ", timeAgo(m.tested_at)] : null) : null,
        m?.managed ? fact("Repair", m.repair ? "on: drift is repaired" : "off") : null,
        fact("Last checked", timeAgo(m?.checked_at, "not yet"))),
      h("h3", {}, "Drift findings"),
      findingsTable(source));
  }

  function renderRuns(list) {
    lastRuns = list;
    for (const element of runs.body.querySelectorAll("details.run[open]")) openRuns.add(element.dataset.runId);
    for (const element of runs.body.querySelectorAll("details.run:not([open])")) openRuns.delete(element.dataset.runId);
    fill(runs.body, list.length
      ? h("div", {class: "runs", id: "runs-list"}, list.map((run, i) =>
        runDetails(run, openRuns.has(run.id) || (i === 0 && run.status === "running"))))
      : h("p", {class: "empty"}, "No sync run yet. Press Sync now to start one."));
    fill(collections.body,
      replaceChart("collections", collectionsChart(list)),
      tableView("collections-table-view", "Table view", collectionsTable(list)));
    if (current) renderActions();
  }

  function renderHourly(answer) {
    const open = document.getElementById("hourly-table-view")?.open ?? false;
    fill(hourly.body,
      replaceChart("hourly", hourlyChart(answer)),
      tableView("hourly-table-view", "Table view", hourlyTable(answer)));
    if (open) document.getElementById("hourly-table-view").open = true;
  }

  async function part(target, load, render) {
    try {
      const answer = await load();
      if (disposed) return;
      target.error(null);
      render(answer);
    } catch (error) {
      if (!disposed) target.error(error.message);
    }
  }

  function renderBackfills(list) {
    lastBackfills = list;
    fill(backfills.body, backfillsList(list));
    if (current) renderActions();
  }

  async function loadRuns() {
    await part(runs, () => api(`${path}/syncs?limit=${RUNS}`), (answer) => renderRuns(answer.runs));
  }

  async function loadBackfills() {
    await part(backfills, () => api(`${path}/backfills?limit=${BACKFILLS}`), (answer) => renderBackfills(answer.backfills));
  }

  // A ledger (the sync runs, the backfills) is read again every 2 s while one of its entries
  // is running; once none is, `ended` shows what that changed.
  function follower(load, entries, ended) {
    let followTimer = null;
    let following = false;
    let latest = 0; // a follow started while another reads: only the latest goes on
    async function follow() {
      clearTimeout(followTimer);
      if (disposed) return;
      const mine = ++latest;
      following = true;
      await load();
      if (disposed || mine !== latest) return;
      if (entries().some(isRunning)) {
        followTimer = setTimeout(follow, RUNNING_REFRESH_MS);
      } else {
        following = false;
        await ended();
      }
    }
    return {
      follow,
      /** After a refresh: follow an entry found running, unless following already. */
      check() {
        if (!following && entries().some(isRunning)) follow();
      },
      stop: () => clearTimeout(followTimer),
    };
  }

  // A run that ended changes the health and the last sync; a backfill that ended, the events
  // stored, per hour and rejected: everything is read again.
  const runsFollower = follower(loadRuns, () => lastRuns, () => loadOverview());
  const backfillsFollower = follower(loadBackfills, () => lastBackfills, () => reload());

  async function loadOverview() {
    try {
      const row = await api(`${path}/overview`);
      if (disposed) return;
      pageError.hidden = true;
      renderOverview(row);
    } catch (error) {
      if (disposed) return;
      pageError.hidden = false;
      fill(pageError, error.status === 404 ? `No source ${sourceId}: it may have been removed.` : error.message);
    }
  }

  async function reload() {
    clearTimeout(timer);
    await Promise.all([
      loadOverview(),
      part(hourly, () => api(`${path}/events/hourly?hours=${HOURS}`), renderHourly),
      part(rejected, () => api(`${path}/rejected?limit=${REJECTED}`), (answer) => fill(rejected.body, rejectedList(answer))),
      loadRuns(),
      loadBackfills(),
    ]);
    if (disposed) return;
    runsFollower.check();
    backfillsFollower.check();
    timer = setTimeout(reload, REFRESH_MS);
  }

  function afterSyncStarted(runId) {
    openRuns.add(runId);
    runsFollower.follow();
  }

  reload();
  return {
    dispose() {
      disposed = true;
      clearTimeout(timer);
      runsFollower.stop();
      backfillsFollower.stop();
      charts.hourly?.destroy();
      charts.collections?.destroy();
    },
  };
}
