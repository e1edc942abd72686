import { Command } from "commander";

export function controllerCommand(): Command {
  return new Command("controller")
    .description("Reconcile HighAvailabilityVIP resources into agent DaemonSets and keep their status true")
    .action(() => {
      throw new Error("the controller is not part of this build yet (issue 4)");
    });
}
