import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The import direction is the architecture: vrrp <- agent, api <- controller, api <- agent, k8s <- agent, k8s <- controller,
// and src/ <- testing/, test/, bench/ (the product never imports what tests it).
const nodeBuiltins = { group: ["node:*"], message: "src/vrrp is pure: pass data in, return actions out." };
const testing = { group: ["**/testing/**", "**/test/**", "**/bench/**"], message: "testing/ (the lab, the test bed, the demo), test/ and bench/ drive the product from outside; src/ never imports them." };
const kubernetes = { group: ["@kubernetes/*", "@dot-i/*"], message: "Kubernetes belongs in src/k8s, src/controller or the agent's k8s adapter." };

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", ".scratch/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Each src/ block below restates `testing`: a later block's no-restricted-imports replaces this one, not adds to it.
    files: ["src/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [testing] }],
    },
  },
  {
    files: ["src/vrrp/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [nodeBuiltins, kubernetes,
          { group: ["pino", "pino/*", "prom-client", "raw-socket", "netlink"], message: "src/vrrp does no I/O and no logging." },
          { group: ["**/agent/**", "**/controller/**", "**/api/**"], message: "src/vrrp imports nothing of ours outside itself." }, testing],
      }],
      "no-restricted-globals": ["error",
        { name: "setTimeout", message: "Time is passed in: return a deadline instead." },
        { name: "setInterval", message: "Time is passed in: return a deadline instead." },
        { name: "process", message: "src/vrrp reads no environment." }],
      "no-restricted-properties": ["error",
        { object: "Date", property: "now", message: "Time is passed in as event.now." },
        { object: "Math", property: "random", message: "Randomness arrives as event data." }],
    },
  },
  {
    files: ["src/api/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [kubernetes, { group: ["**/agent/**", "**/controller/**", "**/vrrp/**"], message: "src/api depends on nothing of ours." }, testing],
      }],
    },
  },
  {
    // The one Kubernetes layer both roles share: client-node is its business, either role's internals are not.
    files: ["src/k8s/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ group: ["**/agent/**", "**/controller/**", "**/vrrp/**"], message: "src/k8s serves the agent and the controller; it imports neither." }, testing],
      }],
    },
  },
  {
    files: ["src/controller/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ group: ["**/vrrp/**", "**/agent/**"], message: "The controller knows nothing of packets or the agent's internals." }, testing],
      }],
    },
  },
  {
    files: ["src/agent/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ group: ["**/controller/**"], message: "The agent does not depend on the controller." }, testing],
      }],
    },
  },
  {
    // client-node costs ~70 MiB of RSS at import on every node; the agent and what it loads of src/k8s use its types only.
    files: ["src/agent/**/*.ts", "src/k8s/**/*.ts"],
    ignores: ["src/k8s/bounded-client.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        patterns: [{ group: ["@kubernetes/*", "**/bounded-client.js"], allowTypeImports: true, message: "The agent uses src/k8s/http-client.ts; client-node is for the controller." }],
      }],
    },
  },
);
