import { Command } from "commander";

export function agentCommand(): Command {
  return new Command("agent")
    .description("Run the VRRP agent on this node: elect a master, hold the VIP, announce it")
    .action(() => {
      throw new Error("the agent is not part of this build yet (issue 3)");
    });
}
