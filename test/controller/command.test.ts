import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { controllerCommand } from "../../src/controller/command.js";

/** What commander says when it refuses the arguments; the action (which would start the process) never runs. */
async function refusal(command: Command, args: readonly string[]): Promise<string> {
  let said = "";
  command.exitOverride().configureOutput({ writeErr: (text) => (said += text), writeOut: () => undefined });
  await expect(command.parseAsync([...args], { from: "user" })).rejects.toThrow();
  return said;
}

describe("the controller's arguments", () => {
  it("the controller refuses --agent-http-address that is not IP addresses, naming the value and the chart's setting", async () => {
    const said = await refusal(controllerCommand(), ["--agent-http-address", "10.0.0.5,eth0"]);
    expect(said).toContain("'eth0' is not an IP address");
    expect(said).toContain("agent.httpAddress");
  });
});
