// exec and attach over any transport: a process's stdin/stdout/stderr joined to the session's
// streams, and the result reported on the error/status channel as the kubelet does (remotecommand
// v4+: a metav1.Status; a non-zero exit is reason NonZeroExitCode with an ExitCode cause, which
// kubectl turns into its own exit code).
import type { ChildProcess } from 'node:child_process';
import { finished } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../../../common/log.js';
import { exitCode, killGroup, type ContainerProcess } from './runtime.js';

export interface ExecStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes: Array<{ reason: string; message: string }> };
}

/** The v4 status of a finished command (pure). */
export function execStatus(code: number, command: string[]): ExecStatus {
  if (code === 0) return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** A command that could not start (not found, not executable): kubectl prints it and exits 1. */
export function startFailedStatus(command: string[], err: NodeJS.ErrnoException): ExecStatus {
  const why = err.code === 'ENOENT' ? `exec: "${command[0]}": executable file not found in $PATH` : `exec: "${command[0]}": ${err.message}`;
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: error executing command in container: failed to exec in container: starting container process caused: ${why}`,
    reason: 'InternalError',
    code: 500,
  };
}

/** The session's side of exec/attach: which channels the client asked for, and how to end. */
export interface SessionIo {
  stdin: Readable | null;
  stdout: Writable | null;
  /** Null with a TTY: stderr then goes to stdout, as with a terminal. */
  stderr: Writable | null;
  /** Terminal size messages ({"Width":…,"Height":…}), when a TTY was asked for. */
  resize: Readable | null;
  /** Writes the status, ends every stream and closes the session. */
  finish(status: ExecStatus): void;
  /** Resolves when the client is gone (connection closed, reset). */
  closed: Promise<void>;
}

async function flushAndEnd(w: Writable | null): Promise<void> {
  if (!w || w.destroyed) return;
  if (!w.writableEnded) w.end();
  await finished(w, { readable: false }).catch(() => {});
}

/** Logs terminal sizes: without a pseudo-terminal there is nothing to resize (README: limits). */
function readResizes(resize: Readable | null, log: Logger): void {
  if (!resize) return;
  let text = '';
  resize.on('data', (d: Buffer) => {
    text += d.toString('utf8');
    for (let nl = text.indexOf('}'); nl >= 0; nl = text.indexOf('}')) {
      const one = text.slice(0, nl + 1).trim();
      text = text.slice(nl + 1);
      try {
        const size = JSON.parse(one) as { Width?: number; Height?: number };
        // Rare (start and window changes): info, so the sizes a client sent can be seen.
        log.info({ width: size.Width, height: size.Height }, 'terminal resize (not applied: no pseudo-terminal)');
      } catch {
        log.debug('unreadable terminal resize message');
      }
    }
  });
  resize.on('error', () => {});
}

/** How a session ended: the process's exit code, or why there is none. */
export type SessionEnd = { exitCode: number } | { exitCode: null; why: 'client_gone' | 'not_started' };

/** Runs `child` (already spawned) for the session and reports how it ended. */
export async function runExec(child: ChildProcess, command: string[], io: SessionIo, log: Logger): Promise<SessionEnd> {
  let clientGone = false;
  void io.closed.then(() => {
    clientGone = true;
    killGroup(child);
  });
  const started = new Promise<NodeJS.ErrnoException | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  const startError = await started;
  if (startError) {
    log.info({ command: command[0], err: startError.code ?? startError.message }, 'exec command did not start');
    io.finish(startFailedStatus(command, startError));
    return { exitCode: null, why: 'not_started' };
  }
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(exitCode(code, signal))));
  child.stdin!.on('error', () => {});
  if (io.stdin) {
    io.stdin.pipe(child.stdin!);
    io.stdin.on('error', () => child.stdin!.destroy());
  } else {
    child.stdin!.end();
  }
  readResizes(io.resize, log);
  const out = io.stdout;
  const err = io.stderr ?? io.stdout;
  // Output is written with backpressure; a client that stopped reading slows the command down, as with a pipe.
  const copy = (from: Readable, to: Writable | null): Promise<void> => {
    if (!to) {
      from.resume();
      return finished(from).catch(() => {});
    }
    from.on('data', (d: Buffer) => {
      if (!to.destroyed && !to.write(d)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    to.on('error', () => {});
    return finished(from).catch(() => {});
  };
  await Promise.all([copy(child.stdout!, out), copy(child.stderr!, err)]);
  // Everything written reaches the client before the status does.
  await Promise.all([...new Set([out, err])].map((w) => flushAndEnd(w)));
  const code = await exited;
  if (clientGone) return { exitCode: null, why: 'client_gone' };
  io.finish(execStatus(code, command));
  return { exitCode: code };
}

/** Joins the session to a running container process until the client leaves or the process ends. */
export async function runAttach(proc: ContainerProcess, io: SessionIo, log: Logger): Promise<SessionEnd> {
  const stdin = proc.child.stdin!;
  if (io.stdin) {
    // Attaching stdin must not close the container's stdin when this client's ends (other attachers, stdinOnce=false).
    io.stdin.on('data', (d: Buffer) => {
      if (!stdin.destroyed) stdin.write(d);
    });
    io.stdin.on('error', () => {});
  }
  readResizes(io.resize, log);
  const onData = (chunk: Buffer, which: 'stdout' | 'stderr'): void => {
    const to = which === 'stdout' ? io.stdout : (io.stderr ?? io.stdout);
    if (to && !to.destroyed) to.write(chunk);
  };
  proc.output.on('data', onData);
  try {
    const result = await Promise.race([proc.exited.then((code) => ({ code })), io.closed.then(() => null)]);
    if (!result) return { exitCode: null, why: 'client_gone' };
    io.finish(execStatus(result.code, proc.command));
    return { exitCode: result.code };
  } finally {
    proc.output.off('data', onData);
  }
}
