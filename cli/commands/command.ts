// cli/commands/: one module per `vicinity` command, each registering itself on the program.
// May import cli/ helpers, functions/core and functions/adapters; never local/ (but local/info.ts).
/** What every command module gets: the program to add itself to, the terminal, and the lazily built context. */
import type { Command } from 'commander';
import type { CliContext } from '../context';
import type { Io } from '../io';

export interface CommandEnv {
  io: Io;
  /** Built on first use, after the global options are parsed: commands that never talk to a stack never need one. */
  context: () => CliContext;
}

export type RegisterCommand = (program: Command, env: CommandEnv) => void;
