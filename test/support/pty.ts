// Runs a command on a pseudo-terminal, for `kubectl exec -it`: Node has no pty without a native
// module, Python's standard library has one. The driver relays its stdin to the terminal and the
// terminal to its stdout, exits with the command's exit code, and on SIGUSR1 changes the terminal's
// size (the kernel then sends SIGWINCH to the command, which is how kubectl learns of a resize).
import { spawn } from 'node:child_process';

/** Debian's python3 (test/setup/prepare.mjs installs it when missing). */
export const PYTHON = '/usr/bin/python3';

const DRIVER = `
import fcntl, os, pty, select, signal, struct, sys, termios
rows, cols, rows2, cols2 = map(int, sys.argv[1:5])
argv = sys.argv[5:]
def size(fd, r, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
pid, master = pty.fork()
if pid == 0:
    size(0, rows, cols)
    os.execvp(argv[0], argv)
signal.signal(signal.SIGUSR1, lambda *_: size(master, rows2, cols2))
inputs = [0, master]
while True:
    readable, _, _ = select.select(inputs, [], [])
    if 0 in readable:
        data = os.read(0, 65536)
        if data:
            os.write(master, data)
        else:
            inputs.remove(0)
    if master in readable:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b''
        if not data:
            break
        os.write(1, data)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) & 0xff)
`;

/**
 * Spawns `command args…` on a terminal of `initial` size; SIGUSR1 to the returned child resizes it
 * to `resized`. stdio of the child are pipes (stdin → terminal, terminal → stdout).
 */
export function spawnOnPty(command: string, args: string[], initial: { rows: number; cols: number }, resized: { rows: number; cols: number }, env: NodeJS.ProcessEnv) {
  return spawn(PYTHON, ['-c', DRIVER, String(initial.rows), String(initial.cols), String(resized.rows), String(resized.cols), command, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
}
