// What every API call of the stand-in kubelet shares: merge patches, and reading a failed call's code and message.
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";

export const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const body = (error as { body?: unknown }).body;
    return body === undefined ? error.message : `${error.message} ${typeof body === "string" ? body : JSON.stringify(body)}`;
  }
  return String(error);
}

export function apiCode(error: unknown): number | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === "number" ? code : undefined;
  }
  return undefined;
}
