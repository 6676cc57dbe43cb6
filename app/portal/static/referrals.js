// "Mine henvisninger": the citizen's referral status view (GET Patient/{id}/$referrals), and what each
// referral is for (the ServiceRequests' code, GET ServiceRequest?_id=...&_elements=code).

import { matches } from "./api.js";
import { conceptText, days, daysUntil, el, formatDateTime, replace, timeElement } from "./format.js";

// PatientState (app/resources/referrals/patient_view.py) -> a short label in plain Norwegian.
const STATE_LABELS = {
  sent: "Sendt",
  received: "Mottatt",
  assessed: "Vurdert",
  appointment: "Time tildelt",
  completed: "Avsluttet",
  rejected: "Avslått",
  forwarded: "Videresendt",
  cancelled: "Trukket tilbake",
};
const DATES = [
  ["sent", "Sendt"],
  ["received", "Mottatt"],
  ["assessed", "Vurdert"],
];

/** One `referral` parameter's parts as an object: {state, text: {nb, en}, organisation, sent, ...}. */
export function referralFields(parameter) {
  const fields = {};
  for (const part of parameter.part || []) {
    if (part.part) {
      fields[part.name] = Object.fromEntries(part.part.map((p) => [p.name, p.valueString]));
    } else {
      const key = Object.keys(part).find((k) => k.startsWith("value"));
      fields[part.name] = key ? part[key] : undefined;
    }
  }
  return fields;
}

function idOf(reference) {
  return reference && reference.reference ? reference.reference.split("/").pop() : null;
}

async function whatFor(api, referrals) {
  const ids = referrals.map((r) => idOf(r.serviceRequest)).filter(Boolean);
  if (!ids.length) return {};
  const query = new URLSearchParams({ _id: ids.join(","), _elements: "code", _count: String(ids.length) });
  try {
    const bundle = await api.get(`/ServiceRequest?${query}`);
    return Object.fromEntries(matches(bundle).map((sr) => [sr.id, conceptText(sr.code)]));
  } catch {
    return {}; // the list is still useful without the descriptions
  }
}

function deadlineText(deadline, state) {
  if (state === "completed" || state === "rejected" || state === "cancelled") return null;
  const left = daysUntil(deadline);
  if (left > 0) return `om ${days(left)}`;
  if (left === 0) return "i dag";
  return `fristen gikk ut for ${days(-left)} siden`;
}

function row(term, ...description) {
  return [el("dt", {}, term), el("dd", {}, ...description)];
}

function referralCard(fields, what, index) {
  const state = fields.state || "sent";
  const titleId = `referral-${index}-title`;
  const details = [];
  if (fields.organisation) details.push(row("Til", fields.organisation));
  for (const [name, label] of DATES) {
    if (fields[name]) details.push(row(label, timeElement(fields[name])));
  }
  if (fields.deadline) {
    const left = deadlineText(fields.deadline, state);
    details.push(row("Frist for start av helsehjelp", timeElement(fields.deadline), left ? ` (${left})` : ""));
  }
  if (fields.appointment) {
    details.push(row("Time", el("time", { datetime: fields.appointment }, formatDateTime(fields.appointment))));
  }
  if (fields.reason && fields.reason.nb) details.push(row("Årsak", fields.reason.nb));
  return el(
    "li",
    { class: "referral", "data-state": state },
    el(
      "article",
      { "aria-labelledby": titleId },
      el("h2", { class: "referral__title", id: titleId }, what || "Henvisning"),
      el("p", { class: `badge badge--${state}` }, el("span", { class: "visually-hidden" }, "Status: "), STATE_LABELS[state] || state),
      el("p", { class: "referral__text" }, (fields.text && fields.text.nb) || ""),
      details.length ? el("dl", { class: "facts" }, details) : null,
    ),
  );
}

/** Fetches and shows the signed-in citizen's referrals in `container`. */
export async function showReferrals(api, session, container) {
  const view = await api.get(`/Patient/${encodeURIComponent(session.patient)}/$referrals`);
  const referrals = (view.parameter || []).filter((p) => p.name === "referral").map(referralFields);
  if (!referrals.length) {
    replace(container, el("p", { class: "empty" }, "Du har ingen henvisninger registrert."));
    return 0;
  }
  const what = await whatFor(api, referrals);
  const cards = referrals.map((fields, i) => referralCard(fields, what[idOf(fields.serviceRequest)], i));
  replace(container, el("ul", { class: "referrals" }, cards));
  return referrals.length;
}
