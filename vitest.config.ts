import { defineConfig } from "vitest/config";

// Host tests build network namespaces and run a real control plane: they need root, and they run one file at a
// time because two cores cannot carry several control planes at once.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/{vrrp,agent,api,controller}/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "host",
          include: ["test/ns/**/*.test.ts", "test/e2e/**/*.test.ts"],
          exclude: ["test/e2e/kind/**"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
