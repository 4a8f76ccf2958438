// Member mode's stand-in for a kubelet and container runtime. A created pod is marked Running
// (status written through the status subresource, as a kubelet would), gets a temp directory, and —
// only when exec is enabled (--enable-pod-exec) — each container with a `command` runs as a child
// process of the server in that directory with a minimal environment. Deleting the pod kills its
// processes (whole process groups) and removes the directory. There is no image, no isolation
// beyond the directory and the environment: this exists so kubectl exec/attach/logs/port-forward
// can be tested end to end against something real.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../../common/log.js';
import type { KubeObject } from '../storage.js';
import { OutputLog } from './output-log.js';

export interface ContainerSpec {
  name: string;
  command: string[];
  env: Array<{ name: string; value: string }>;
}

/** The containers of a pod object (pure; malformed entries are skipped). */
export function podContainers(pod: KubeObject): ContainerSpec[] {
  const spec = pod.spec as { containers?: unknown } | undefined;
  if (!Array.isArray(spec?.containers)) return [];
  const out: ContainerSpec[] = [];
  for (const c of spec.containers as Array<Record<string, unknown>>) {
    if (typeof c !== 'object' || c === null || typeof c.name !== 'string') continue;
    const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    const env = Array.isArray(c.env)
      ? (c.env as Array<Record<string, unknown>>).filter((e) => typeof e?.name === 'string').map((e) => ({ name: e.name as string, value: typeof e.value === 'string' ? e.value : '' }))
      : [];
    out.push({ name: c.name, command: [...strings(c.command), ...strings(c.args)], env });
  }
  return out;
}

/** Which container a request means: the named one, else the default-container annotation, else the first. */
export function chooseContainer(pod: KubeObject, requested: string | null): { name: string } | { error: string } {
  const containers = podContainers(pod);
  const podName = pod.metadata.name ?? '';
  if (requested) return containers.some((c) => c.name === requested) ? { name: requested } : { error: `container ${requested} is not valid for pod ${podName}` };
  const annotated = pod.metadata.annotations?.['kubectl.kubernetes.io/default-container'];
  if (annotated && containers.some((c) => c.name === annotated)) return { name: annotated };
  if (containers.length === 0) return { error: `pod ${podName} has no containers` };
  return { name: containers[0]!.name };
}

/** The environment of every process in a pod: nothing of the server's own environment leaks in. */
export function podEnvironment(pod: KubeObject, dir: string, container: ContainerSpec | undefined, tty: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dir,
    HOSTNAME: pod.metadata.name ?? '',
    POD_NAMESPACE: pod.metadata.namespace ?? '',
  };
  if (tty) env.TERM = 'xterm';
  for (const e of container?.env ?? []) env[e.name] = e.value;
  return env;
}

export interface ContainerProcess {
  child: ChildProcess;
  /** command + args, as the exit status names them. */
  command: string[];
  output: OutputLog;
  exited: Promise<number>;
}

interface PodState {
  uid: string;
  dir: string;
  pod: KubeObject;
  containers: Map<string, ContainerProcess>;
  /** Output of containers without a process (empty logs), so `logs -f` has something to follow. */
  idleLogs: Map<string, OutputLog>;
  /** Exec children of this pod, killed with it. */
  execs: Set<ChildProcess>;
}

export type ContainerExit = (pod: KubeObject, container: string, code: number) => void;

/** The exit code a container runtime reports: the process's, or 128 + signal number. */
export function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return 128 + (n ?? 9);
}

export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

export class PodRuntime {
  private readonly pods = new Map<string, PodState>();
  /** Created with the first pod: a member that never runs one leaves nothing in $TMPDIR. */
  private root: string | null = null;

  /** A process.exit() without close() (a second signal, a fatal error) still takes the pods' processes along; only SIGKILL of the server orphans them. */
  private readonly onExit = (): void => this.close();

  constructor(private readonly options: { log: Logger; execEnabled: boolean; onContainerExit?: ContainerExit }) {
    process.once('exit', this.onExit);
  }

  get execEnabled(): boolean {
    return this.options.execEnabled;
  }

  private key(ns: string, name: string): string {
    return `${ns}/${name}`;
  }

  has(pod: KubeObject): boolean {
    const s = this.pods.get(this.key(pod.metadata.namespace ?? '', pod.metadata.name ?? ''));
    return s !== undefined && s.uid === pod.metadata.uid;
  }

  /** Starts a pod seen for the first time (a replaced pod of the same name is stopped first). */
  start(pod: KubeObject): void {
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name ?? '';
    const k = this.key(ns, name);
    const old = this.pods.get(k);
    if (old) this.stopState(k, old);
    this.root ??= fs.mkdtempSync(path.join(os.tmpdir(), 'member-pods-'));
    const dir = path.join(this.root, `${ns}_${name}_${pod.metadata.uid ?? ''}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const state: PodState = { uid: pod.metadata.uid ?? '', dir, pod, containers: new Map(), idleLogs: new Map(), execs: new Set() };
    this.pods.set(k, state);
    for (const c of podContainers(pod)) {
      if (!this.options.execEnabled || c.command.length === 0) continue;
      state.containers.set(c.name, this.startContainer(state, c));
    }
    this.options.log.info({ namespace: ns, pod: name, dir, processes: state.containers.size }, 'pod started');
  }

  private startContainer(state: PodState, c: ContainerSpec): ContainerProcess {
    const output = new OutputLog();
    const child = spawn(c.command[0]!, c.command.slice(1), {
      cwd: state.dir,
      env: podEnvironment(state.pod, state.dir, c, false),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout!.on('data', (d: Buffer) => output.append(d, 'stdout'));
    child.stderr!.on('data', (d: Buffer) => output.append(d, 'stderr'));
    child.stdin!.on('error', () => {});
    const exited = new Promise<number>((resolve) => {
      child.once('error', (err) => {
        output.append(Buffer.from(`failed to start container "${c.name}": ${err.message}\n`), 'stderr');
        output.end();
        resolve(127);
      });
      child.once('close', (code, signal) => {
        output.end();
        resolve(exitCode(code, signal));
      });
    });
    void exited.then((code) => {
      this.options.log.info({ namespace: state.pod.metadata.namespace, pod: state.pod.metadata.name, container: c.name, code }, 'container exited');
      if (this.pods.get(this.key(state.pod.metadata.namespace ?? '', state.pod.metadata.name ?? '')) === state) this.options.onContainerExit?.(state.pod, c.name, code);
    });
    return { child, command: c.command, output, exited };
  }

  stop(ns: string, name: string): void {
    const k = this.key(ns, name);
    const state = this.pods.get(k);
    if (state) this.stopState(k, state);
  }

  private stopState(k: string, state: PodState): void {
    this.pods.delete(k);
    for (const c of state.containers.values()) killGroup(c.child);
    for (const e of state.execs) killGroup(e);
    for (const l of state.idleLogs.values()) l.end();
    fs.rmSync(state.dir, { recursive: true, force: true });
    this.options.log.info({ namespace: state.pod.metadata.namespace, pod: state.pod.metadata.name }, 'pod stopped');
  }

  /** The running process of a container, if it has one. */
  container(pod: KubeObject, container: string): ContainerProcess | undefined {
    return this.state(pod)?.containers.get(container);
  }

  /** The output of a container (an empty, open log for a container without a process). */
  output(pod: KubeObject, container: string): OutputLog | undefined {
    const state = this.state(pod);
    if (!state) return undefined;
    const proc = state.containers.get(container);
    if (proc) return proc.output;
    let idle = state.idleLogs.get(container);
    if (!idle) state.idleLogs.set(container, (idle = new OutputLog()));
    return idle;
  }

  /** Runs a command in the pod's directory; the child is killed with the pod. */
  exec(pod: KubeObject, container: string, command: string[], tty: boolean): ChildProcess | undefined {
    const state = this.state(pod);
    if (!state) return undefined;
    const spec = podContainers(state.pod).find((c) => c.name === container);
    const child = spawn(command[0]!, command.slice(1), {
      cwd: state.dir,
      env: podEnvironment(state.pod, state.dir, spec, tty),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    state.execs.add(child);
    child.once('close', () => state.execs.delete(child));
    child.once('error', () => state.execs.delete(child));
    return child;
  }

  private state(pod: KubeObject): PodState | undefined {
    const s = this.pods.get(this.key(pod.metadata.namespace ?? '', pod.metadata.name ?? ''));
    return s && s.uid === pod.metadata.uid ? s : undefined;
  }

  /** Stops every pod and removes the runtime's directory (server shutdown). */
  close(): void {
    process.off('exit', this.onExit);
    for (const [k, s] of [...this.pods]) this.stopState(k, s);
    if (this.root !== null) fs.rmSync(this.root, { recursive: true, force: true });
    this.root = null;
  }
}
