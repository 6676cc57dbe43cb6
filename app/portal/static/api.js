// The FHIR API, called like any other client: same origin, the citizen's bearer token on every request.

const FHIR_JSON = "application/fhir+json";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Plain Norwegian for what went wrong; the server's own words (OperationOutcome) are kept as detail. */
function explain(status, detail) {
  const reasons = {
    400: "Forespørselen ble ikke forstått av tjenesten.",
    401: "Økten din er utløpt. Logg inn på nytt.",
    403: "Du har ikke tilgang til disse opplysningene.",
    404: "Fant ikke opplysningene.",
  };
  const text = reasons[status] || (status >= 500 ? "Tjenesten svarer ikke akkurat nå. Prøv igjen senere." : "Noe gikk galt.");
  return detail ? `${text} (${detail})` : text;
}

async function outcomeText(response) {
  try {
    const body = await response.json();
    const issue = (body.issue || [])[0] || {};
    return issue.diagnostics || (issue.details && issue.details.text) || "";
  } catch {
    return "";
  }
}

/** A path on this server for a link the server gave (Bundle.link.url carries BASE_URL, which need not
 * be the origin the page was loaded from). */
export function localPath(url) {
  const parsed = new URL(url, window.location.origin);
  return parsed.pathname + parsed.search;
}

/**
 * `token()` gives the current bearer token; `onUnauthorized()` runs when the server refuses it (401).
 */
export function createApi(token, onUnauthorized) {
  async function request(method, path, body) {
    const headers = { Accept: FHIR_JSON };
    const current = token();
    if (current) headers.Authorization = `Bearer ${current}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, "Fikk ikke kontakt med tjenesten. Sjekk nettforbindelsen og prøv igjen.");
    }
    if (!response.ok) {
      const detail = await outcomeText(response);
      if (response.status === 401 && current) onUnauthorized();
      throw new ApiError(response.status, explain(response.status, detail));
    }
    return response.json();
  }
  return {
    get: (path) => request("GET", path),
    post: (path, body) => request("POST", path, body),
  };
}

/** The resources of a searchset Bundle's matches. */
export function matches(bundle) {
  return (bundle.entry || []).filter((e) => !e.search || e.search.mode !== "outcome").map((e) => e.resource);
}

/** The Bundle's link of that relation, as a path on this server, or null. */
export function link(bundle, relation) {
  const found = (bundle.link || []).find((l) => l.relation === relation);
  return found ? localPath(found.url) : null;
}

/** A function that finds a Bundle's resource by a Reference: by fullUrl, else by "Type/id". */
export function resolver(bundle) {
  const byKey = new Map();
  for (const entry of bundle.entry || []) {
    const resource = entry.resource;
    if (!resource) continue;
    if (entry.fullUrl) byKey.set(entry.fullUrl, resource);
    if (resource.id) byKey.set(`${resource.resourceType}/${resource.id}`, resource);
  }
  return (reference) => {
    if (!reference) return null;
    if (byKey.has(reference.reference)) return byKey.get(reference.reference);
    const local = (reference.reference || "").split("/").slice(-2).join("/");
    return byKey.get(local) || null;
  };
}
