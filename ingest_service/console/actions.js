// What an operator can do to a source from its page, each one call of the admin API:
// Sync now, Backfill, Configure webhook, Check webhook, Rotate API key, Set verification key.

import {api} from "./api.js";
import {h} from "./dom.js";
import {moment} from "./format.js";
import {announce, formDialog, warningsList} from "./widgets.js";

const sourcePath = (source) => `sources/${encodeURIComponent(source.id)}`;

/** POST /sources/{id}/syncs (relayed to the sync service); the run then shows as running. */
export async function syncNow(source, started) {
  try {
    const answer = await api(`${sourcePath(source)}/syncs`, {method: "POST"});
    announce(`Sync of ${source.name} started.`);
    started(answer.run_id);
  } catch (error) {
    announce(`Sync not started: ${error.message}`, "error");
  }
}

// SendGrid keeps 30 days of events behind Email Logs: no backfill reaches further.
const BACKFILL_MAX_DAYS = 30;

/**
 * POST /sources/{id}/backfills {days} (relayed to the sync service); `follow()` then has the
 * page follow the source's backfills: the new one, or on a 409 the one already running.
 */
export function backfill(source, follow) {
  const days = h("input", {id: "backfill-days", name: "days", type: "number", min: 1, max: BACKFILL_MAX_DAYS,
    step: 1, value: BACKFILL_MAX_DAYS, required: true, inputmode: "numeric", "aria-describedby": "backfill-days-hint"});
  formDialog({
    title: "Backfill from Email Logs",
    description: h("div", {},
      h("p", {}, "SendGrid keeps every message's events for 30 days behind its Email Logs API. A backfill ",
        "reads the messages created in the days chosen and stores their events not stored yet: an event ",
        "the webhook or an earlier backfill stored is counted as a duplicate, never stored twice."),
      h("p", {class: "hint"}, "It needs Email Logs on the SendGrid account: without it the backfill fails ",
        "saying so. An interrupted backfill of this source is resumed instead, with its own range.")),
    fields: h("div", {class: "field"},
      h("label", {for: "backfill-days"}, `Days back (1 to ${BACKFILL_MAX_DAYS})`),
      days,
      h("p", {class: "hint", id: "backfill-days-hint"}, "Messages created from this many days ago until now.")),
    submitLabel: "Start backfill",
    busyLabel: "Starting…",
    async submit() {
      const value = Number(days.value);
      if (!Number.isInteger(value) || value < 1 || value > BACKFILL_MAX_DAYS) {
        throw new Error(`Give a whole number of days from 1 to ${BACKFILL_MAX_DAYS}.`);
      }
      let answer;
      try {
        answer = await api(`${sourcePath(source)}/backfills`, {method: "POST", body: {days: value}});
      } catch (error) {
        if (error.status === 409) follow();
        throw error;
      }
      announce(`Backfill of ${source.name} ${answer.resumed ? "resumed" : "started"}.`);
      follow();
      const range = `messages created ${moment(answer.since)} → ${moment(answer.until)}`;
      return h("p", {class: "ok-line", id: "backfill-started"}, answer.resumed
        ? `An interrupted backfill was resumed instead, from ${moment(answer.reached)}: ${range}.`
        : `Backfill started: ${range}. It shows below under Backfills from Email Logs.`);
    },
  });
}

/** GET /sources/{id}/webhook/check: read the webhook back from SendGrid now. */
export async function checkWebhook(source, button, reload) {
  button.disabled = true;
  try {
    const result = await api(`${sourcePath(source)}/webhook/check`);
    const found = result.findings.map((f) => f.finding);
    announce(found.length ? `Webhook check: ${found.join(", ")}.` : "Webhook check: nothing wrong.",
      found.length ? "error" : "info");
    await reload();
  } catch (error) {
    announce(`Webhook not checked: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

/** POST /sources/{id}/webhook: adopt or create the Event Webhook, sign it, test it. */
export function configureWebhook(source, reload) {
  const adopt = h("input", {id: "adopt-webhook-id", name: "adopt", type: "text", spellcheck: "false",
    autocomplete: "off", maxlength: 64});
  formDialog({
    title: "Configure the Event Webhook",
    description: h("div", {},
      h("p", {}, "With the source's API key, SendGrid's Event Webhook is pointed at this source: the webhook ",
        "already at its URL is adopted, or a new one is created (every event type on), signing is turned on ",
        "and its key stored, then SendGrid is asked for a test batch."),
      h("p", {class: "hint"}, "Waiting for the test batch can take up to a minute (WEBHOOK_TEST_TIMEOUT).")),
    fields: h("div", {class: "field"},
      h("label", {for: "adopt-webhook-id"}, "Adopt this webhook id (optional)"),
      adopt,
      h("p", {class: "hint"}, "Only when the plan's webhook limit is reached: that webhook is repointed here.")),
    submitLabel: "Configure",
    busyLabel: "Configuring…",
    async submit() {
      const body = adopt.value.trim() ? {adopt_webhook_id: adopt.value.trim()} : {};
      const answer = await api(`${sourcePath(source)}/webhook`, {method: "POST", body});
      reload();
      const m = answer.webhook_management;
      const line = m?.managed
        ? `Webhook ${m.webhook_id} ${m.origin}, signed: ${m.signed ? "yes" : "no"}, test batch: ${m.test_status ?? "not sent"}.`
        : "The webhook was not configured.";
      return [h("p", {class: "ok-line"}, line), warningsList(answer.warnings, "No warnings.")];
    },
  });
}

/** PATCH /sources/{id} {api_key}: SendGrid checks the new key before it is stored. */
export function rotateApiKey(source, reload) {
  const key = h("input", {id: "new-api-key", name: "api_key", type: "password", autocomplete: "off",
    spellcheck: "false", required: true});
  formDialog({
    title: "Rotate the API key",
    description: h("p", {}, "Paste the new SendGrid API key. SendGrid is asked for its scopes first: a key it ",
      "refuses is not stored and the current one stays. The key is encrypted at rest and never shown again."),
    fields: h("div", {class: "field"}, h("label", {for: "new-api-key"}, "New API key (SG.…)"), key),
    submitLabel: "Rotate key",
    busyLabel: "Checking the key…",
    async submit() {
      if (!key.value.trim()) throw new Error("Paste the new key first.");
      const answer = await api(sourcePath(source), {method: "PATCH", body: {api_key: key.value}});
      key.value = "";
      reload();
      return [h("p", {class: "ok-line"}, `Key stored (fingerprint ${answer.api_key_fingerprint}).`),
        warningsList(answer.warnings, "The key has every scope the source reads with.")];
    },
  });
}

/** PATCH /sources/{id} {webhook_verification_key}: the Signed Event Webhook's public key. */
export function setVerificationKey(source, reload) {
  const key = h("textarea", {id: "verification-key-input", name: "webhook_verification_key", rows: 4,
    spellcheck: "false", autocomplete: "off"});
  const clear = h("input", {id: "clear-verification-key", type: "checkbox", name: "clear"});
  formDialog({
    title: "Set the verification key",
    description: h("p", {}, "The Verification Key SendGrid shows for a Signed Event Webhook (base64 or PEM). ",
      "Once set, every batch must carry a valid signature. ",
      source.webhook_signed ? "This source has one now." : "This source has none now: batches are not signature-checked."),
    fields: [
      h("div", {class: "field"}, h("label", {for: "verification-key-input"}, "Verification key"), key),
      h("div", {class: "field check"}, clear,
        h("label", {for: "clear-verification-key"}, "Remove the key instead (stop checking signatures)")),
    ],
    submitLabel: "Save",
    busyLabel: "Saving…",
    async submit() {
      const value = clear.checked ? null : key.value.trim();
      if (value === "") throw new Error("Paste the key, or tick the box to remove it.");
      const answer = await api(sourcePath(source), {method: "PATCH", body: {webhook_verification_key: value}});
      reload();
      return h("p", {class: "ok-line"}, answer.webhook_signed
        ? "Key stored: signatures are verified from now on."
        : "Key removed: batches are no longer signature-checked.");
    },
  });
}
