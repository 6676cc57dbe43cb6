// "Mitt helsekort for gravide": the woman's pregnancy card, from GET Patient/{id}/$pregnancy-card (a FHIR
// document Bundle whose Composition sections follow the paper card; app/resources/pregnancy_card/card.py).
// The due date and today's gestational age, the next consultation of her plan (GET CarePlan/{id}/$next: the
// pack's rule, which counts a finished consultation in a window as held), the consultations so far
// with what was measured, charts of weight, blood pressure and symphysis-fundal height over gestational
// weeks (inline SVG drawn here, each with an accessible name and its values as text), and her notes and
// questions, with a form that adds a question for the next consultation (POST Communication).

import { resolver } from "./api.js";
import { conceptText, daysUntil, el, timeElement } from "./format.js";

const LOINC = "http://loinc.org";
const CARD_SYSTEM = "http://helsebro.no/fhir/CodeSystem/pregnancy-card";
// The basic programme's canonical (codes.PROGRAMME_URL): the plan $next is asked about.
const PROGRAMME_URL = "http://helsebro.no/fhir/PlanDefinition/basisprogram-svangerskap";
const EPISODE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare";
const SVG_NS = "http://www.w3.org/2000/svg";
const TERM_DAYS = 280;
// LOINC codes of app/resources/pregnancy_card/codes.py.
const CODES = {
  weight: "29463-7",
  bp: "85354-9",
  systolic: "8480-6",
  diastolic: "8462-4",
  sfHeight: "11881-0",
  edd: "11778-8",
  eddUltrasound: "11781-2",
  eddLmp: "11779-6",
};
const NOTE_CATEGORIES = { sporsmal: "Spørsmål til neste konsultasjon", notat: "Notat" };
const NUMBER = new Intl.NumberFormat("nb-NO", { maximumFractionDigits: 1 });
const DAY_MS = 24 * 60 * 60 * 1000;

// -- reading the document --------------------------------------------------------------------------------

function hasCode(concept, system, code) {
  return ((concept && concept.coding) || []).some((c) => c.system === system && c.code === code);
}

function sectionOf(composition, code) {
  return (composition.section || []).find((s) => hasCode(s.code, CARD_SYSTEM, code)) || null;
}

function sectionResources(composition, code, resolve) {
  const section = sectionOf(composition, code);
  return ((section && section.entry) || []).map(resolve).filter(Boolean);
}

/** The lines of a generated narrative, parsed inertly (no scripts run, nothing is inserted). */
function narrativeLines(section) {
  const div = section && section.text && section.text.div;
  if (!div) return [];
  const parsed = new DOMParser().parseFromString(div, "text/html");
  return [...parsed.querySelectorAll("li")].map((li) => (li.textContent || "").trim());
}

function isoDate(value) {
  return typeof value === "string" && /^\d{4}-\d{2}-\d{2}/.test(value) ? value.slice(0, 10) : null;
}

/** Days from `from` to `to` (both YYYY-MM-DD). */
function daysBetween(from, to) {
  return Math.round((Date.parse(to) - Date.parse(from)) / DAY_MS);
}

/** "17+3" for 122 days. */
function weeksAndDays(days) {
  return `${Math.floor(days / 7)}+${days % 7}`;
}

/** The due date in force and how it was set: the dating section's "Termin: <date> (fastsatt etter …)",
 * else the latest recorded due date (estimated, by ultrasound, by the last period). */
function dueDate(composition, observations) {
  for (const line of narrativeLines(sectionOf(composition, "datering"))) {
    const match = /^Termin: (\d{4}-\d{2}-\d{2})(?: \(fastsatt etter ([^)]+)\))?/.exec(line);
    if (match) return { date: match[1], method: match[2] || null };
  }
  for (const [code, method] of [[CODES.edd, null], [CODES.eddUltrasound, "ultralyd"], [CODES.eddLmp, "siste menstruasjon"]]) {
    const found = observations
      .filter((o) => hasCode(o.code, LOINC, code) && isoDate(o.valueDateTime))
      .sort((a, b) => String(b.effectiveDateTime || "").localeCompare(String(a.effectiveDateTime || "")))[0];
    if (found) return { date: isoDate(found.valueDateTime), method };
  }
  return null;
}

function quantity(resource) {
  const q = resource && resource.valueQuantity;
  return q && typeof q.value === "number" ? q.value : null;
}

function component(observation, code) {
  return quantity((observation.component || []).find((c) => hasCode(c.code, LOINC, code)));
}

/** What was measured at one consultation: weight, blood pressure, SF height, and any other value. */
function measurements(observations) {
  const out = { weight: null, systolic: null, diastolic: null, sfHeight: null, other: [] };
  for (const o of observations) {
    if (hasCode(o.code, LOINC, CODES.weight) && quantity(o) !== null) out.weight = quantity(o);
    else if (hasCode(o.code, LOINC, CODES.sfHeight) && quantity(o) !== null) out.sfHeight = quantity(o);
    else if (hasCode(o.code, LOINC, CODES.bp)) {
      out.systolic = component(o, CODES.systolic);
      out.diastolic = component(o, CODES.diastolic);
    } else {
      const value =
        quantity(o) !== null
          ? `${NUMBER.format(quantity(o))} ${o.valueQuantity.unit || o.valueQuantity.code || ""}`.trim()
          : conceptText(o.valueCodeableConcept) || o.valueString || (typeof o.valueBoolean === "boolean" ? (o.valueBoolean ? "ja" : "nei") : "");
      if (value) out.other.push(`${conceptText(o.code) || "Måling"}: ${value}`);
    }
  }
  return out;
}

/** The consultations that have taken place, oldest first, each with its date, gestational age and values. */
function consultations(composition, resolve, observations, due, today) {
  const encounters = sectionResources(composition, "konsultasjon", resolve).filter((r) => r.resourceType === "Encounter");
  return encounters
    .map((encounter) => {
      const day = isoDate((encounter.period || {}).start);
      const key = `Encounter/${encounter.id}`;
      const at = observations.filter((o) => o.encounter && (o.encounter.reference || "").split("/").slice(-2).join("/") === key);
      const gaDays = due && day ? TERM_DAYS - daysBetween(day, due.date) : null;
      return { encounter, day, gaDays, where: (encounter.serviceProvider || {}).display || "", values: measurements(at) };
    })
    .filter((c) => c.day && c.day <= today && !["planned", "cancelled", "entered-in-error"].includes(c.encounter.status))
    .sort((a, b) => a.day.localeCompare(b.day));
}

// -- the parts of the view -------------------------------------------------------------------------------

function row(term, ...description) {
  return [el("dt", {}, term), el("dd", {}, ...description)];
}

function todayIso() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Oslo" }).format(new Date());
}

function datingPart(due) {
  if (!due) {
    return el("section", { class: "panel-section", "aria-labelledby": "gravid-termin" }, el("h2", { id: "gravid-termin" }, "Termin"), el("p", { class: "empty" }, "Termin er ikke fastsatt ennå."));
  }
  const gaDays = TERM_DAYS - daysUntil(due.date);
  const facts = [row("Termin", timeElement(due.date), due.method ? ` (fastsatt etter ${due.method})` : "")];
  if (gaDays >= 0) {
    const weeks = Math.floor(gaDays / 7);
    const rest = gaDays % 7;
    facts.push(
      row(
        "Svangerskapslengde i dag",
        el("span", { "data-ga-days": gaDays }, weeksAndDays(gaDays)),
        ` (${weeks} ${weeks === 1 ? "uke" : "uker"} og ${rest} ${rest === 1 ? "dag" : "dager"})`,
      ),
    );
  }
  const left = daysUntil(due.date);
  facts.push(row("Til termin", left > 0 ? `${left} ${left === 1 ? "dag" : "dager"}` : left === 0 ? "Termin er i dag" : "Termin er passert"));
  return el(
    "section",
    { class: "panel-section", "aria-labelledby": "gravid-termin" },
    el("h2", { id: "gravid-termin" }, "Termin og svangerskapslengde"),
    el("dl", { class: "facts", id: "gravid-dating" }, facts),
  );
}

/** The items of a $next Parameters by name ("due", "overdue", "upcoming"), each part as a plain object. */
function nextItems(parameters, name) {
  return (parameters.parameter || [])
    .filter((p) => p.name === name)
    .map((p) => Object.fromEntries((p.part || []).map((part) => [part.name, part.valueString ?? part.valueDate ?? part.valueCode ?? part.valueBoolean])));
}

/** "17+3 – 19+6" for a window of dates and the due date the plan was built from. */
function windowWeeks(item, dueIso) {
  if (!dueIso || !isoDate(item.start)) return null;
  const from = TERM_DAYS - daysBetween(item.start, dueIso);
  const to = isoDate(item.end) ? TERM_DAYS - daysBetween(item.end, dueIso) : null;
  if (from < 0) return null;
  return to !== null ? `${weeksAndDays(from)} – ${weeksAndDays(to)}` : weeksAndDays(from);
}

const BOOKING = { scheduled: "Timen er avtalt", "in-progress": "Pågår", "on-hold": "Satt på vent" };

function nextFacts(item, dueIso) {
  const facts = [row("Hva", item.title || "Konsultasjon")];
  const start = isoDate(item.start);
  const end = isoDate(item.end);
  if (start || end) facts.push(row("Når", "Mellom ", start ? timeElement(start) : "…", " – ", end ? timeElement(end) : "…"));
  const weeks = windowWeeks(item, dueIso);
  if (weeks) facts.push(row("Svangerskapsuke", weeks));
  facts.push(row("Status", BOOKING[item.status] || "Ikke avtalt ennå"));
  return el("dl", { class: "facts" }, facts);
}

/** The part from $next: the consultation due now, else the upcoming one, and programme consultations whose
 * window has ended without being held. `answer` is {parameters} or {error}; null when there is no plan. */
function nextPart(answer) {
  const body = [];
  if (!answer) {
    body.push(el("p", { class: "empty" }, "Ingen ny konsultasjon er planlagt ennå."));
  } else if (answer.error) {
    body.push(el("p", { class: "notice", id: "gravid-neste-feil" }, `Neste konsultasjon kunne ikke hentes. ${answer.error.message || ""}`.trim()));
  } else {
    const parameters = answer.parameters;
    const dueIso = isoDate((parameters.parameter || []).find((p) => p.name === "dueDate")?.valueDate);
    const now = nextItems(parameters, "due")[0];
    const upcoming = nextItems(parameters, "upcoming")[0];
    if (now) body.push(el("p", { "data-when": "due" }, "Det er tid for denne konsultasjonen nå."), nextFacts(now, dueIso));
    else if (upcoming) body.push(nextFacts(upcoming, dueIso));
    else body.push(el("p", { class: "empty" }, "Ingen ny konsultasjon er planlagt ennå."));
    const missed = nextItems(parameters, "overdue").filter((item) => item.extra === false);
    if (missed.length) {
      const names = missed.map((item) => {
        const weeks = windowWeeks(item, dueIso);
        return weeks ? `${item.title} (uke ${weeks})` : item.title;
      });
      body.push(
        el("p", { class: "notice", id: "gravid-ikke-gjennomfort" }, `Ikke gjennomført: ${names.join(", ")}. Er dette gjort likevel, eller lurer du på noe, kan du ta det opp ved neste konsultasjon.`),
      );
    }
  }
  return el("section", { class: "panel-section", id: "gravid-neste", "aria-labelledby": "gravid-neste-title" }, el("h2", { id: "gravid-neste-title" }, "Neste konsultasjon"), body);
}

/** $next for the card's CarePlan (the programme's, else the first), as the citizen; null without a plan. */
async function fetchNext(api, plans) {
  const plan = plans.find((p) => (p.instantiatesCanonical || []).includes(PROGRAMME_URL)) || plans[0];
  if (!plan || !plan.id) return null;
  try {
    return { parameters: await api.get(`/CarePlan/${encodeURIComponent(plan.id)}/$next`) };
  } catch (error) {
    return { error };
  }
}

function bloodPressure(values) {
  return values.systolic !== null && values.diastolic !== null ? `${NUMBER.format(values.systolic)}/${NUMBER.format(values.diastolic)} mmHg` : "–";
}

function consultationsPart(visits) {
  const title = el("h2", { id: "gravid-konsultasjoner-title" }, "Konsultasjoner så langt");
  if (!visits.length) {
    return el("section", { class: "panel-section", "aria-labelledby": "gravid-konsultasjoner-title" }, title, el("p", { class: "empty" }, "Ingen konsultasjoner er registrert ennå."));
  }
  const head = ["Dato", "Svangerskapsuke", "Vekt", "Blodtrykk", "Symfyse-fundusmål", "Annet", "Hvor"];
  const rows = visits.map((v) =>
    el(
      "tr",
      { "data-encounter": v.encounter.id },
      el("th", { scope: "row" }, timeElement(v.day)),
      el("td", {}, v.gaDays !== null && v.gaDays >= 0 ? weeksAndDays(v.gaDays) : "–"),
      el("td", {}, v.values.weight !== null ? `${NUMBER.format(v.values.weight)} kg` : "–"),
      el("td", {}, bloodPressure(v.values)),
      el("td", {}, v.values.sfHeight !== null ? `${NUMBER.format(v.values.sfHeight)} cm` : "–"),
      el("td", {}, v.values.other.length ? v.values.other.join("; ") : "–"),
      el("td", {}, v.where || "–"),
    ),
  );
  return el(
    "section",
    { class: "panel-section", "aria-labelledby": "gravid-konsultasjoner-title" },
    title,
    el(
      "div",
      { class: "table-wrap", role: "region", "aria-labelledby": "gravid-konsultasjoner-caption", tabindex: "0" },
      el(
        "table",
        { class: "data-table", id: "gravid-konsultasjoner" },
        el("caption", { id: "gravid-konsultasjoner-caption" }, `Konsultasjonene dine (${visits.length})`),
        el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows),
      ),
    ),
  );
}

// -- charts: inline SVG, no library -----------------------------------------------------------------------

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Round tick values covering [min, max], about `count` of them. */
function ticks(min, max, count) {
  const span = max - min || 1;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || 10 * magnitude;
  const first = Math.floor(min / step) * step;
  const last = Math.ceil(max / step) * step;
  const out = [];
  for (let v = first; v <= last + step / 2; v += step) out.push(Number(v.toFixed(6)));
  return out;
}

const WIDTH = 560;
const HEIGHT = 300;
const MARGIN = { top: 16, right: 20, bottom: 52, left: 64 };
const MARKERS = ["circle", "square"];

/**
 * A line chart against gestational week: `series` is [{name, key, points: [{x (weeks), y, label}]}].
 * role="img" with the chart's name as aria-label and <title>, a <desc>, and the values as text beside it.
 */
function chart({ id, title, yLabel, unit, series }) {
  const points = series.flatMap((s) => s.points);
  const figure = (...children) => el("figure", { class: "chart", id: `chart-${id}` }, ...children);
  const heading = el("h3", { id: `chart-${id}-heading` }, title);
  if (!points.length) return figure(heading, el("p", { class: "empty" }, "Ingen målinger registrert ennå."));
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const xTicks = ticks(Math.max(0, Math.floor(Math.min(...xs)) - 2), Math.ceil(Math.max(...xs)) + 2, 8);
  const yPad = Math.max(1, (Math.max(...ys) - Math.min(...ys)) * 0.15);
  const yTicks = ticks(Math.min(...ys) - yPad, Math.max(...ys) + yPad, 5);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0 || 1)) * plotW;
  const sy = (y) => MARGIN.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const count = (n) => `${n} ${n === 1 ? "måling" : "målinger"}`;
  const counts = series.length > 1 ? series.map((s) => `${s.name.toLowerCase()} ${count(s.points.length)}`).join(", ") : count(points.length);
  const name = `${title} (${unit}) etter svangerskapsuke: ${counts}`;
  const descId = `chart-${id}-desc`;
  const description = series
    .map((s) => `${s.name}: ${s.points.map((p) => `${NUMBER.format(p.y)} ${unit} i uke ${p.label}`).join(", ")}.`)
    .join(" ");

  const grid = [
    ...yTicks.map((t) =>
      svg(
        "g",
        { class: "chart__tick" },
        svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: sy(t), y2: sy(t), class: "chart__grid" }),
        svg("text", { x: MARGIN.left - 8, y: sy(t) + 4, "text-anchor": "end" }, NUMBER.format(t)),
      ),
    ),
    ...xTicks.map((t) =>
      svg(
        "g",
        { class: "chart__tick" },
        svg("line", { x1: sx(t), x2: sx(t), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 5, class: "chart__axis" }),
        svg("text", { x: sx(t), y: MARGIN.top + plotH + 20, "text-anchor": "middle" }, NUMBER.format(t)),
      ),
    ),
  ];
  const axes = [
    svg("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotH, class: "chart__axis" }),
    svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH, class: "chart__axis" }),
    svg("text", { class: "chart__label", x: MARGIN.left + plotW / 2, y: HEIGHT - 8, "text-anchor": "middle" }, "Svangerskapsuke"),
    svg("text", { class: "chart__label", x: 16, y: MARGIN.top + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 16 ${MARGIN.top + plotH / 2})` }, yLabel),
  ];
  const lines = series.map((s, index) => {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    const path = sorted.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
    const marker = MARKERS[index % MARKERS.length];
    const dots = sorted.map((p) => {
      const tip = svg("title", {}, `Uke ${p.label}: ${NUMBER.format(p.y)} ${unit}`);
      const attrs = { class: "chart__point", "data-series": s.key, "data-week": p.label, "data-value": p.y };
      return marker === "circle"
        ? svg("circle", { ...attrs, cx: sx(p.x), cy: sy(p.y), r: 5 }, tip)
        : svg("rect", { ...attrs, x: sx(p.x) - 5, y: sy(p.y) - 5, width: 10, height: 10 }, tip);
    });
    return svg("g", { class: `chart__series chart__series--${index}`, "data-series": s.key }, svg("path", { d: path, class: "chart__line" }), dots);
  });
  const picture = svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": name, "aria-describedby": descId, class: "chart__svg", focusable: "false" },
    svg("title", {}, name),
    svg("desc", {}, description),
    grid,
    axes,
    lines,
  );
  const legend =
    series.length > 1
      ? el(
          "ul",
          { class: "chart__legend" },
          series.map((s, index) =>
            el("li", { class: `chart__key chart__key--${index}` }, el("span", { "aria-hidden": "true" }, MARKERS[index % MARKERS.length] === "circle" ? "● " : "■ "), s.name),
          ),
        )
      : null;
  return figure(
    heading,
    picture,
    legend,
    el("figcaption", { id: descId, class: "chart__text" }, description),
  );
}

function chartsPart(visits) {
  const dated = visits.filter((v) => v.gaDays !== null && v.gaDays >= 0);
  const pointsOf = (pick) =>
    dated.filter((v) => pick(v.values) !== null).map((v) => ({ x: v.gaDays / 7, y: pick(v.values), label: weeksAndDays(v.gaDays) }));
  return el(
    "section",
    { class: "panel-section", "aria-labelledby": "gravid-kurver-title" },
    el("h2", { id: "gravid-kurver-title" }, "Målingene dine over tid"),
    el("p", {}, "Kurvene viser målingene fra konsultasjonene etter svangerskapsuke. Verdiene står også som tekst under hver kurve."),
    el(
      "div",
      { class: "charts" },
      chart({ id: "vekt", title: "Vekt", yLabel: "Vekt (kg)", unit: "kg", series: [{ name: "Vekt", key: "vekt", points: pointsOf((m) => m.weight) }] }),
      chart({
        id: "blodtrykk",
        title: "Blodtrykk",
        yLabel: "Blodtrykk (mmHg)",
        unit: "mmHg",
        series: [
          { name: "Systolisk (øvre)", key: "systolisk", points: pointsOf((m) => m.systolic) },
          { name: "Diastolisk (nedre)", key: "diastolisk", points: pointsOf((m) => m.diastolic) },
        ],
      }),
      chart({
        id: "sf",
        title: "Symfyse-fundusmål",
        yLabel: "Symfyse-fundusmål (cm)",
        unit: "cm",
        series: [{ name: "Symfyse-fundusmål", key: "sf", points: pointsOf((m) => m.sfHeight) }],
      }),
    ),
  );
}

// -- her notes and questions -----------------------------------------------------------------------------

function noteCategory(note) {
  for (const concept of note.category || []) {
    for (const coding of concept.coding || []) {
      if (coding.system === CARD_SYSTEM && NOTE_CATEGORIES[coding.code]) return coding.code;
    }
  }
  return "notat";
}

function noteItem(note) {
  const text = (note.payload || []).map((p) => p.contentString).filter(Boolean).join(" ");
  const category = noteCategory(note);
  const sent = note.sent || note.meta?.lastUpdated;
  return el(
    "li",
    { class: "note", "data-category": category },
    el("p", { class: "note__meta" }, el("span", { class: "note__kind" }, NOTE_CATEGORIES[category]), sent ? [", ", timeElement(isoDate(sent) || sent)] : null),
    el("p", { class: "note__text" }, text),
  );
}

function announce(text, isError = false) {
  const status = document.getElementById("status");
  const error = document.getElementById("error");
  if (isError) {
    if (status) status.textContent = "";
    if (error) {
      error.textContent = text;
      error.hidden = false;
    }
    return;
  }
  if (error) {
    error.textContent = "";
    error.hidden = true;
  }
  if (status) status.textContent = text;
}

function notesPart(api, notes, patientRef, episodeRef) {
  const list = el("ul", { class: "notes", id: "gravid-notater" }, notes.map(noteItem));
  const empty = el("p", { class: "empty", hidden: notes.length > 0 }, "Du har ingen notater eller spørsmål ennå.");
  const field = el("textarea", { id: "gravid-sporsmal", name: "sporsmal", rows: "3", maxlength: "2000", required: true, "aria-describedby": "gravid-sporsmal-hint" });
  const button = el("button", { type: "submit", class: "button" }, "Legg til spørsmål");
  const form = el(
    "form",
    { class: "note-form", id: "gravid-sporsmal-form" },
    el("label", { for: "gravid-sporsmal" }, "Ditt spørsmål til neste konsultasjon"),
    el("p", { class: "hint", id: "gravid-sporsmal-hint" }, "Jordmor eller lege ser spørsmålet på helsekortet ditt. Haster det, ring legekontoret eller legevakten (116 117)."),
    field,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = field.value.trim();
    if (!text) {
      announce("Skriv spørsmålet ditt før du legger det til.", true);
      field.focus();
      return;
    }
    if (!patientRef || !episodeRef) {
      announce("Spørsmålet kunne ikke legges til: helsekortet mangler svangerskapet.", true);
      return;
    }
    const communication = {
      resourceType: "Communication",
      extension: [{ url: EPISODE_EXTENSION, valueReference: { reference: episodeRef } }],
      status: "completed",
      category: [{ coding: [{ system: CARD_SYSTEM, code: "sporsmal", display: NOTE_CATEGORIES.sporsmal }] }],
      subject: { reference: patientRef },
      sender: { reference: patientRef },
      sent: new Date().toISOString(),
      payload: [{ contentString: text }],
    };
    button.disabled = true;
    announce("Lagrer spørsmålet ditt …");
    try {
      const created = await api.post("/Communication", communication);
      list.append(noteItem(created && created.resourceType === "Communication" ? created : communication));
      empty.hidden = true;
      field.value = "";
      announce("Spørsmålet ditt er lagt til.");
    } catch (error) {
      announce(`Spørsmålet ble ikke lagret. ${error.message || ""}`.trim(), true);
    } finally {
      button.disabled = false;
    }
  });
  return el(
    "section",
    { class: "panel-section", "aria-labelledby": "gravid-notater-title" },
    el("h2", { id: "gravid-notater-title" }, "Mine notater og spørsmål"),
    list,
    empty,
    form,
  );
}

/** Nodes showing the $pregnancy-card document. */
export async function renderPregnancyCard(api, bundle) {
  const resources = (bundle.entry || []).map((e) => e.resource).filter(Boolean);
  const composition = resources.find((r) => r.resourceType === "Composition") || {};
  const resolve = resolver(bundle);
  const observations = resources.filter((r) => r.resourceType === "Observation");
  const today = todayIso();
  const due = dueDate(composition, observations);
  const visits = consultations(composition, resolve, observations, due, today);
  const plans = sectionResources(composition, "plan", resolve).filter((r) => r.resourceType === "CarePlan");
  const notes = sectionResources(composition, "notater", resolve)
    .filter((r) => r.resourceType === "Communication")
    .sort((a, b) => String(a.sent || "").localeCompare(String(b.sent || "")));
  const patientRef = (composition.subject || {}).reference || null;
  const episode = ((composition.event || [])[0] || {}).detail || [];
  const episodeRef = (episode.find((d) => (d.reference || "").startsWith("EpisodeOfCare/")) || {}).reference || null;
  return [
    datingPart(due),
    nextPart(await fetchNext(api, plans)),
    consultationsPart(visits),
    chartsPart(visits),
    notesPart(api, notes, patientRef, episodeRef),
  ];
}

/** What the panel says when she has no pregnancy recorded (the operation's 404). */
export const NO_PREGNANCY =
  "Du har ikke noe registrert svangerskap. Når fastlegen eller jordmoren din registrerer svangerskapet, finner du helsekortet ditt her.";
