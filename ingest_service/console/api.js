// The admin API, called on this console's own origin with the admin token as a bearer
// token. The token lives in sessionStorage (this tab only) and never in a cookie, so no
// other site can make the browser send it: there is no CSRF to defend against.

const TOKEN_KEY = "sendgrid-source.admin-token";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called when a stored token is refused (the service's ADMIN_TOKEN changed): sign-in again.
let onRefused = () => {};
export function whenTokenRefused(callback) {
  onRefused = callback;
}

// The console is served at <base>/console/; the API is at <base>/, so paths are relative to
// the parent of this page and work behind a proxy that mounts the service under a prefix.
export function apiUrl(path) {
  return new URL(`../${path.replace(/^\//, "")}`, window.location.href);
}

/**
 * Call the API; resolves to the JSON answer (null for 204), rejects with an ApiError whose
 * message is the service's own (every error has {"error": {"code", "message"}}).
 * `token` checks a token not stored yet (sign-in); otherwise the stored one is sent.
 */
export async function api(path, {method = "GET", body, token} = {}) {
  const candidate = token !== undefined;
  const headers = {Accept: "application/json", Authorization: `Bearer ${candidate ? token : session.token()}`};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    throw new ApiError(0, "unreachable", `the service did not answer (${error.message}); is it running?`);
  }
  if (response.status === 204) return null;
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    // not JSON: a proxy's error page, say; the status line is all there is to tell
  }
  if (!response.ok) {
    const message = answer?.error?.message ?? `${response.status} ${response.statusText}`;
    const error = new ApiError(response.status, answer?.error?.code ?? "http_error", message);
    if (response.status === 401 && !candidate) onRefused(error);
    throw error;
  }
  return answer;
}
