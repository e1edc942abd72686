import { defineConfig } from "vitest/config";

// Host tests build network namespaces and run a real control plane: they need root, they run after the unit tests,
// and one file at a time, because two cores cannot carry several control planes and timing-sensitive nodes at once.
export default defineConfig({
  test: {
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          sequence: { groupOrder: 0 },
          include: ["test/{vrrp,agent,api,controller,k8s,monitoring}/**/*.test.ts"],
          // The fuzz test takes about a second alone and 14 s on this machine with two other test runs beside it.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "host",
          sequence: { groupOrder: 1 },
          include: ["test/ns/**/*.test.ts", "test/e2e/**/*.test.ts", "test/kind/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
