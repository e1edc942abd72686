import { Command } from "commander";

export function demoCommand(): Command {
  return new Command("demo")
    .description("Run three namespace nodes with nginx and agents, and fail the VIP over while a client watches")
    .action(() => {
      throw new Error("the demo is not part of this build yet (issue 6)");
    });
}
