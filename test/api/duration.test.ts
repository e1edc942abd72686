import { describe, expect, it } from "vitest";
import { formatDuration, isDuration, parseDuration } from "../../src/api/v1alpha1/index.js";

describe("parseDuration", () => {
  it.each([
    ["0s", 0],
    ["0ms", 0],
    ["10ms", 10],
    ["100ms", 100],
    ["1s", 1_000],
    ["1.5s", 1_500],
    ["40.95s", 40_950],
    ["0.001s", 1],
    ["2m", 120_000],
    ["1.5m", 90_000],
    ["1h", 3_600_000],
    ["0.001h", 3_600],
    ["255s", 255_000],
  ])("%s is %d ms", (text, milliseconds) => {
    expect(parseDuration(text)).toBe(milliseconds);
  });

  it.each(["", "1", "1 s", "1S", "-1s", "+1s", "1.s", ".5s", "1.2345s", "10.5ms", "1m30s", "1us", "1d", "1e3ms", "0x10ms"])(
    "refuses %j",
    (text) => {
      expect(isDuration(text)).toBe(false);
      expect(() => parseDuration(text)).toThrow(RangeError);
    },
  );
});

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [10, "10ms"],
    [999, "999ms"],
    [1_000, "1s"],
    [1_500, "1.5s"],
    [1_001, "1.001s"],
    [40_950, "40.95s"],
    [60_000, "1m"],
    [90_000, "90s"],
    [3_600_000, "1h"],
  ])("%d ms is %s", (milliseconds, text) => {
    expect(formatDuration(milliseconds)).toBe(text);
  });

  it("round-trips through parseDuration", () => {
    for (const milliseconds of [0, 1, 10, 999, 1_000, 1_010, 12_345, 59_999, 60_000, 61_000, 3_599_999, 7_200_000]) {
      expect(parseDuration(formatDuration(milliseconds))).toBe(milliseconds);
    }
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("refuses %d", (milliseconds) => {
    expect(() => formatDuration(milliseconds)).toThrow(RangeError);
  });
});
