import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { apiStatusCode, describeApiError } from "../../src/k8s/errors.js";

const forbidden = JSON.stringify({ kind: "Status", message: 'secrets "vrrp" is forbidden: User "system:serviceaccount:edge:agent" cannot get resource "secrets"', code: 403 });

describe("API errors in one line", () => {
  it("an ApiException: the status, the RBAC hint on 403, and the server's own message", () => {
    const error = new ApiException(403, "Unknown API Status Code!", forbidden, {});
    expect(apiStatusCode(error)).toBe(403);
    expect(describeApiError(error)).toBe('HTTP 403 (RBAC: the Role or ClusterRole bound to this ServiceAccount does not allow it): secrets "vrrp" is forbidden: User "system:serviceaccount:edge:agent" cannot get resource "secrets"');
  });

  it("a body client-node already parsed, and a body that is no Status", () => {
    expect(describeApiError(new ApiException(404, "", { kind: "Status", message: "not found" }, {}))).toBe("HTTP 404: not found");
    expect(describeApiError(new ApiException(502, "", "<html>Bad Gateway</html>", {}))).toBe("HTTP 502: <html>Bad Gateway</html>");
  });

  it("a refused watch (client-node's Watch puts the status in statusCode)", () => {
    const error = Object.assign(new Error("Gone"), { statusCode: 410 });
    expect(apiStatusCode(error)).toBe(410);
    expect(describeApiError(error)).toBe("HTTP 410: Gone");
  });

  it("a network failure has no status and keeps its first line", () => {
    const error = Object.assign(new Error("request to https://10.0.0.1:6443/api failed, reason: connect ECONNREFUSED\nmore"), { code: "ECONNREFUSED" });
    expect(apiStatusCode(error)).toBeUndefined();
    expect(describeApiError(error)).toBe("request to https://10.0.0.1:6443/api failed, reason: connect ECONNREFUSED");
  });

  it("a numeric code that is no HTTP status (an aborted call's DOMException) is not taken for one", () => {
    const error = new DOMException("The operation was aborted.", "AbortError");
    expect(apiStatusCode(error)).toBeUndefined();
    expect(describeApiError(error)).toBe("The operation was aborted.");
    expect(describeApiError("plain text")).toBe("plain text");
  });
});
