// The deploy/ manifests as the tests see them: kustomize renders (real `kubectl kustomize`,
// offline), the Kubernetes OpenAPI models that validate each object (kubernetes-models), and what
// the binaries' --help says about their flags and default ports.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { DIST, ROOT } from './paths.js';

const run = promisify(execFile);

export const KUSTOMIZE_ROOT = path.join(ROOT, 'deploy', 'kubernetes');
export const DOCKERFILE = path.join(ROOT, 'deploy', 'Dockerfile');
export const ENTRYPOINT = path.join(DIST, 'deploy', 'image', 'entrypoint.js');

/** A rendered Kubernetes object: only the fields every object has are typed. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Every kustomization under deploy/kubernetes (bases and overlays), relative to it. */
export function kustomizations(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    if (fs.existsSync(path.join(dir, 'kustomization.yaml'))) found.push(path.relative(KUSTOMIZE_ROOT, dir));
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(dir, entry.name));
  };
  walk(KUSTOMIZE_ROOT);
  return found.sort();
}

export async function render(kustomization: string): Promise<KubeObject[]> {
  const { stdout } = await run('kubectl', ['kustomize', path.join(KUSTOMIZE_ROOT, kustomization)], { maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${kustomization}: ${doc.errors[0]!.message}`);
    return doc.toJS() as KubeObject;
  });
}

type Model = new (data: unknown) => { validate(): void };

/**
 * The kubernetes-models class of an object's apiVersion and kind (core types live under `v1`,
 * the others under `<group>/<version>`), or null when the package has none.
 */
export async function modelOf(object: Pick<KubeObject, 'apiVersion' | 'kind'>): Promise<Model | null> {
  const module = (await import(`kubernetes-models/${object.apiVersion}`).catch(() => null)) as Record<string, Model> | null;
  return module?.[object.kind] ?? null;
}

export interface PodTemplateOwner {
  object: KubeObject;
  labels: Record<string, string>;
  spec: PodSpec;
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: Record<string, { name?: string; key?: string; fieldPath?: string }> }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: Record<string, unknown>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  restartPolicy?: string;
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  volumes?: Array<{ name: string; secret?: { secretName: string; defaultMode?: number }; configMap?: { name: string; defaultMode?: number }; emptyDir?: object }>;
}

/** Deployments and StatefulSets with their pod templates. */
export function podOwners(objects: KubeObject[]): PodTemplateOwner[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((object) => {
      const template = (object.spec as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }).template;
      return { object, labels: template.metadata.labels, spec: template.spec };
    });
}

export function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** package.json's bins: name → compiled file. */
export function packageBins(): Record<string, string> {
  return (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
}

/** The image tag the Dockerfile's header says to build (`podman build -t NAME …`). */
export function intendedImage(): string {
  const match = /podman build -t (\S+)/.exec(fs.readFileSync(DOCKERFILE, 'utf8'));
  if (!match) throw new Error('deploy/Dockerfile names no image (`podman build -t NAME`)');
  return match[1]!;
}

/** A bin's --help text, from the compiled binary started through the image's entrypoint. */
export async function helpOf(bin: string): Promise<string> {
  const { stdout } = await run(process.execPath, [ENTRYPOINT, bin, '--help']);
  return stdout;
}

export interface HelpFlag {
  flag: string;
  /** The default shown in brackets at the end of the line, if any. */
  fallback: string | null;
}

/** The flags a --help text lists (`  --name ARG   text [default]`, and the required ones of its `usage:` line). */
export function flagsOfHelp(help: string): Map<string, HelpFlag> {
  const flags = new Map<string, HelpFlag>();
  for (const line of help.split('\n')) {
    if (/^usage:/i.test(line)) {
      for (const [flag] of line.matchAll(/--[a-z][a-z0-9-]*/g)) flags.set(flag, { flag, fallback: null });
      continue;
    }
    const match = /^\s+(--[a-z][a-z0-9-]*)\b/.exec(line);
    if (!match) continue;
    const fallback = /\[([^\]]*)\]\s*$/.exec(line)?.[1] ?? null;
    flags.set(match[1]!, { flag: match[1]!, fallback });
  }
  return flags;
}

/** `--flag value` pairs of an argument list (the bins take no `--flag=value` form in manifests). */
export function flagsOfArgs(args: string[]): Array<{ flag: string; value: string | null }> {
  const result: Array<{ flag: string; value: string | null }> = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) continue;
    const next = args[i + 1];
    const value = next !== undefined && !next.startsWith('--') ? next : null;
    result.push({ flag: arg, value });
    if (value !== null) i++;
  }
  return result;
}

/** The port of a HOST:PORT value ([v6]:port too). */
export function portOf(hostPort: string): number {
  const match = /:(\d+)$/.exec(hostPort);
  if (!match) throw new Error(`not HOST:PORT: ${hostPort}`);
  return Number(match[1]);
}

/** Whether every label of the selector is on the object. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}
