/**
 * The CLI's output and its one error type. Commands write through `Io` (never console or
 * process.exit), so the tests run them in-process and read what a terminal would show.
 */

export interface Io {
  /** A line (or lines) of the command's result, to stdout. */
  out(text: string): void;
  /** Progress and notes, to stderr (so `--json` output stays clean). */
  err(text: string): void;
  /** The stream a TTY progress bar draws on, when there is one. */
  progressStream?: NodeJS.WriteStream;
  /** Whether stderr is a terminal (progress bars) — plain lines otherwise. */
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /**
   * Asks (on stderr) and reads one line of input: the terminal's, or the first line piped in.
   * Undefined when there is no input to read (stdin closed or empty): a confirmation then refuses.
   */
  ask?(question: string): Promise<string | undefined>;
}

/** One line from stdin (a terminal or a pipe); undefined at end of input. */
async function askStdin(question: string): Promise<string | undefined> {
  const { createInterface } = await import('node:readline');
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
    let answered = false;
    process.stderr.write(question);
    rl.once('line', (line) => {
      answered = true;
      rl.close();
      resolve(line);
    });
    rl.once('close', () => {
      if (!answered) resolve(undefined);
    });
  });
}

export function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    progressStream: process.stderr,
    isTTY: Boolean(process.stderr.isTTY),
    env: process.env,
    cwd: process.cwd(),
    ask: askStdin,
  };
}

/** Collects output in memory (tests); `input`: the lines a user would type (none: no stdin). */
export function bufferIo(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd(), input: string[] = []) {
  const lines = [...input];
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: Io = {
    out: (t) => stdout.push(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => stderr.push(t.endsWith('\n') ? t : `${t}\n`),
    isTTY: false,
    env,
    cwd,
    ask: async (question) => {
      stderr.push(question);
      return lines.shift();
    },
  };
  return {
    io,
    stdout: () => stdout.join(''),
    stderr: () => stderr.join(''),
  };
}

/**
 * Every failure the CLI reports: one line saying what went wrong, one hint saying what to do, and
 * the exit code (1 unless said otherwise). `details` are extra lines (e.g. file:line problems).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly details: string[] = [],
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Turns anything thrown into a CliError: AWS SDK and network errors get a specific hint. */
export function asCliError(err: unknown, where?: { endpoint?: string; local?: boolean }): CliError {
  if (err instanceof CliError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? '';
  const message = (e?.message ?? String(err)).split('\n')[0] as string;
  const code = networkCode(err);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNRESET') {
    return new CliError(
      `cannot reach ${where?.endpoint ?? 'the service'} (${code})`,
      where?.local
        ? 'is the local stack running? Start it with `npm start` (or point --home at its VICINITY_HOME)'
        : 'check the address and your network',
    );
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return new CliError(
      'no AWS credentials found',
      'set AWS_PROFILE or pass --profile, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY',
    );
  }
  if (name === 'NoSuchBucket')
    return new CliError(`bucket not found: ${message}`, 'check --bucket (the stack output "Bucket")');
  if (name === 'ResourceNotFoundException')
    return new CliError(`DynamoDB table not found: ${message}`, 'check --table (the stack output "Table")');
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || e?.$metadata?.httpStatusCode === 403) {
    return new CliError(
      `access denied: ${message}`,
      'check that your credentials (--profile) may use the bucket and table; see docs/deploy.md',
    );
  }
  if (
    name === 'InvalidAccessKeyId' ||
    name === 'UnrecognizedClientException' ||
    name === 'SignatureDoesNotMatch'
  ) {
    return new CliError(`the credentials were refused: ${message}`, 'check --profile / AWS_PROFILE');
  }
  return new CliError(
    message || name || 'unexpected error',
    'run again with VICINITY_DEBUG=1 for the stack trace',
  );
}

/** Prints a CliError the one way every command does. */
export function printError(io: Io, err: CliError): void {
  io.err(`vicinity: ${err.message}`);
  for (const d of err.details) io.err(`  ${d}`);
  if (err.hint) io.err(`hint: ${err.hint}`);
}
