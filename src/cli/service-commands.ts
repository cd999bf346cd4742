// Subcommands of the service: serve, api, worker, submit, watch (owned by the service layer).
import type { Command } from 'commander';

export function registerServiceCommands(program: Command): void {
  void program;
}
