#!/usr/bin/env node
import { Command } from "commander";
import { agentCommand } from "./agent/command.js";
import { controllerCommand } from "./controller/command.js";
import { demoCommand } from "./demo/command.js";

const program = new Command("ha-nginx")
  .description("A floating virtual IP for nginx over VRRP, run by a Kubernetes operator")
  .addCommand(agentCommand())
  .addCommand(controllerCommand())
  .addCommand(demoCommand());

await program.parseAsync();
