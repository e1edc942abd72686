/** The HTTP status of a failed API call (client-node's ApiException.code), or undefined for a network failure. */
export function apiStatusCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** The API server's own message ("... is forbidden: User ... cannot patch resource ..."), else the error's. */
export function describeApiError(error: unknown): string {
  if (typeof error === "object" && error !== null && "body" in error) {
    const body = (error as { body: unknown }).body;
    const parsed: unknown = typeof body === "string" ? safeJson(body) : body;
    if (typeof parsed === "object" && parsed !== null && "message" in parsed && typeof parsed.message === "string") return parsed.message;
  }
  return error instanceof Error ? error.message : String(error);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
