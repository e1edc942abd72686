// What a failed API call says, in one line, for every log and start-up message of the agent and the controller.

/** The HTTP status of a failed API call or watch (client-node's ApiException.code, its Watch's statusCode), or
 * undefined for a network failure. The range check keeps out numeric codes that are not HTTP (DOMException's 20). */
export function apiStatusCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = "code" in error ? error.code : "statusCode" in error ? error.statusCode : undefined;
  return typeof code === "number" && code >= 100 && code < 600 ? code : undefined;
}

/** "HTTP 403 (RBAC …): <the API server's own message>", or the error's first line when no server answered. */
export function describeApiError(error: unknown): string {
  const code = apiStatusCode(error);
  const message = serverMessage(error) ?? firstLine(error);
  if (code === undefined) return message;
  // The server's message names the user and the verb; the hint says where the fix goes.
  const hint = code === 403 ? " (RBAC: the Role or ClusterRole bound to this ServiceAccount does not allow it)" : "";
  return `HTTP ${code}${hint}: ${message}`;
}

/** The API server's Status message from the response body, or the body's start when it is not a Status (a proxy's page). */
function serverMessage(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("body" in error)) return undefined;
  const body = error.body;
  const parsed = typeof body === "string" ? parseJson(body) : body;
  if (typeof parsed === "object" && parsed !== null && "message" in parsed && typeof parsed.message === "string") return parsed.message;
  return typeof body === "string" && body.trim() !== "" ? body.trim().slice(0, 200) : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// client-node's ApiException message runs on with the headers and the body over several lines.
function firstLine(error: unknown): string {
  return error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
}
