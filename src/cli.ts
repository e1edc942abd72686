#!/usr/bin/env node
import { Command } from "commander";
import { agentCommand } from "./agent/command.js";
import { StartupError } from "./startup-error.js";
import { controllerCommand } from "./controller/command.js";
import { uninstallCommand } from "./controller/uninstall-command.js";

const program = new Command("ha-nginx")
  .description("A floating virtual IP for nginx over VRRP, run by a Kubernetes operator")
  .addCommand(agentCommand())
  .addCommand(controllerCommand())
  .addCommand(uninstallCommand());

try {
  await program.parseAsync();
} catch (error) {
  if (!(error instanceof StartupError)) throw error;
  console.error(`ha-nginx: ${error.message}`);
  process.exitCode = 2;
}
