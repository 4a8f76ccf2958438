#!/usr/bin/env node
// fedctl: joins member clusters to the federation and federates types, the way kubefedctl does,
// by writing KubeFed objects to the federation API server (it never talks to members itself:
// the hub reaches them through their agents). Exit codes: 0 done, 1 the API refused or timed
// out (its message is printed), 2 bad invocation.
import fs from 'node:fs';
import https from 'node:https';
import { KubeConfig, KubernetesObjectApi, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { parseOrExit } from '../../common/flags.js';
import { federatedTypeConfigFor, parseTargetTypeName, UNJOIN_FINALIZER, type TargetType } from '../kubefed/api.js';
import { FEDCTL_HELP, parseFedctlOptions, type FedctlOptions } from './options.js';




class CommandError extends Error {}

function loadConfig(o: FedctlOptions): KubeConfig {
  const kc = new KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  if (o.context) {
    if (!kc.getContextObject(o.context)) throw new CommandError(`context ${JSON.stringify(o.context)} not found in the kubeconfig`);
    kc.setCurrentContext(o.context);
  }
  if (!kc.getCurrentCluster()) throw new CommandError('the kubeconfig has no current cluster; pass --context');
  return kc;
}

/** A short message from client-node's ApiException (the Status message) or any other error. */
function describe(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e.code === 'number') {
    try {
      const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string });
      return `${e.code}: ${body?.message ?? 'no message'}`;
    } catch {
      return `${e.code}: ${String(e.body)}`;
    }
  }
  return e.message ?? String(err);
}

async function read(api: KubernetesObjectApi, obj: KubernetesObject): Promise<KubernetesObject | null> {
  try {
    return await api.read(obj as never);
  } catch (err) {
    if ((err as { code?: number }).code === 404) return null;
    throw err;
  }
}

/** Create, or replace what is there (keeping its resourceVersion): re-running join updates. */
async function upsert(api: KubernetesObjectApi, obj: KubernetesObject): Promise<'created' | 'updated'> {
  const existing = await read(api, obj);
  if (!existing) {
    await api.create(obj);
    return 'created';
  }
  await api.replace({ ...existing, ...obj, metadata: { ...existing.metadata, ...obj.metadata, resourceVersion: existing.metadata?.resourceVersion } } as KubernetesObject);
  return 'updated';
}

function readFile(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new CommandError(`${flag} ${file}: ${(err as Error).message}`);
  }
}

async function join(kc: KubeConfig, o: Extract<FedctlOptions, { command: 'join' }>): Promise<string> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const secretName = `${o.cluster}-credentials`;
  const data: Record<string, string> = {};
  if (o.tokenFile) data.token = readFile('--token-file', o.tokenFile).toString('base64');
  if (o.clientCert) data['tls.crt'] = readFile('--client-cert', o.clientCert).toString('base64');
  if (o.clientKey) data['tls.key'] = readFile('--client-key', o.clientKey).toString('base64');
  const caBundle = o.caFile ? readFile('--ca-file', o.caFile).toString('base64') : undefined;
  await upsert(api, { apiVersion: 'v1', kind: 'Secret', metadata: { name: secretName, namespace: o.namespace }, type: 'Opaque', data } as KubernetesObject);
  const what = await upsert(api, {
    apiVersion: 'core.kubefed.io/v1beta1',
    kind: 'KubeFedCluster',
    metadata: { name: o.cluster, namespace: o.namespace, labels: o.labels },
    spec: {
      apiEndpoint: o.apiEndpoint,
      ...(caBundle ? { caBundle } : {}),
      secretRef: { name: secretName },
      ...(o.disabledTlsValidations.length ? { disabledTLSValidations: o.disabledTlsValidations } : {}),
    },
  } as KubernetesObject);
  return `kubefedcluster ${o.cluster} ${what} (secret ${o.namespace}/${secretName}); watch it with: kubectl -n ${o.namespace} get kubefedcluster ${o.cluster} -w`;
}

async function unjoin(kc: KubeConfig, o: Extract<FedctlOptions, { command: 'unjoin' }>): Promise<string> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const ref = { apiVersion: 'core.kubefed.io/v1beta1', kind: 'KubeFedCluster', metadata: { name: o.cluster, namespace: o.namespace } };
  const cluster = (await read(api, ref)) as (KubernetesObject & { spec?: { secretRef?: { name?: string } } }) | null;
  if (!cluster) throw new CommandError(`kubefedcluster ${o.cluster} not found in ${o.namespace}`);
  if (o.deletePropagated) {
    const finalizers = new Set(cluster.metadata?.finalizers ?? []);
    finalizers.add(UNJOIN_FINALIZER);
    await api.replace({ ...cluster, metadata: { ...cluster.metadata, finalizers: [...finalizers] } });
  }
  await api.delete(ref);
  if (o.deletePropagated) {
    // The controller removes the finalizer once the member holds nothing it propagated.
    const deadline = Date.now() + o.timeoutSeconds * 1000;
    for (;;) {
      const left = await read(api, ref);
      if (!left) break;
      if (Date.now() >= deadline) throw new CommandError(`kubefedcluster ${o.cluster} still deleting its propagated objects after ${o.timeoutSeconds}s (is the cluster reachable?); it is removed when they are`);
      await untilDeleted(kc, o.namespace, o.cluster, left.metadata!.resourceVersion!, deadline - Date.now());
    }
  }
  const secret = cluster.spec?.secretRef?.name;
  if (secret) await api.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name: secret, namespace: o.namespace } }).catch((err: unknown) => {
    if ((err as { code?: number }).code !== 404) throw err;
  });
  return `kubefedcluster ${o.cluster} removed${o.deletePropagated ? ', with what was propagated to it' : ' (objects propagated to it are left in place)'}`;
}

/** Watches the KubeFedCluster from `resourceVersion` until it is deleted, the watch ends, or `ms` pass. */
function untilDeleted(kc: KubeConfig, namespace: string, name: string, resourceVersion: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let controller: AbortController | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      controller?.abort();
      resolve();
    };
    const timer = setTimeout(finish, ms);
    new Watch(kc)
      .watch(`/apis/core.kubefed.io/v1beta1/namespaces/${namespace}/kubefedclusters`, { fieldSelector: `metadata.name=${name}`, resourceVersion }, (type: string) => type === 'DELETED' && finish(), finish)
      .then((c) => {
        controller = c;
        if (done) c.abort();
      }, finish);
  });
}

/** GET a discovery document from the federation API server with the kubeconfig's credentials. */
async function discovery(kc: KubeConfig, path: string): Promise<unknown> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const server = kc.getCurrentCluster()!.server;
  return new Promise((resolve, reject) => {
    https
      .get(`${server}${path}`, { ...opts, timeout: 15_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : res.statusCode === 404 ? resolve(null) : reject(new CommandError(`GET ${path}: ${res.statusCode} ${body.slice(0, 200)}`))));
      })
      .on('timeout', function (this: { destroy(e: Error): void }) {
        this.destroy(new CommandError(`GET ${path}: timed out`));
      })
      .on('error', reject);
  });
}

/** The target type as the federation API server serves it (as kubefedctl reads it from the host cluster). */
async function lookupType(kc: KubeConfig, name: string, version: string | null): Promise<TargetType> {
  const { plural, group } = parseTargetTypeName(name);
  let v = version;
  if (!v) {
    if (!group) v = 'v1';
    else {
      const g = (await discovery(kc, `/apis/${group}`)) as { preferredVersion?: { version?: string } } | null;
      v = g?.preferredVersion?.version ?? null;
      if (!v) throw new CommandError(`the federation API server does not serve the group ${group}: apply the type's CRD to the federation first`);
    }
  }
  const list = (await discovery(kc, group ? `/apis/${group}/${v}` : `/api/${v}`)) as { resources?: Array<{ name: string; kind: string; namespaced: boolean }> } | null;
  const r = list?.resources?.find((x) => x.name === plural);
  if (!r) throw new CommandError(`the federation API server does not serve ${plural} in ${group ? `${group}/` : ''}${v}`);
  return { group, version: v, kind: r.kind, plural, namespaced: r.namespaced };
}

async function enable(kc: KubeConfig, o: Extract<FedctlOptions, { command: 'enable' }>): Promise<string> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const ftc = federatedTypeConfigFor(await lookupType(kc, o.type, o.version)) as unknown as KubernetesObject;
  ftc.metadata!.namespace = o.namespace;
  const what = await upsert(api, ftc);
  const spec = (ftc as unknown as { spec: { federatedType: { kind: string } } }).spec;
  return `federatedtypeconfig ${ftc.metadata!.name} ${what}: ${spec.federatedType.kind} is served by the federation`;
}

async function disable(kc: KubeConfig, o: Extract<FedctlOptions, { command: 'disable' }>): Promise<string> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const ref = { apiVersion: 'core.kubefed.io/v1beta1', kind: 'FederatedTypeConfig', metadata: { name: o.type, namespace: o.namespace } };
  const ftc = (await read(api, ref)) as (KubernetesObject & { spec: Record<string, unknown> }) | null;
  if (!ftc) throw new CommandError(`federatedtypeconfig ${o.type} not found in ${o.namespace}`);
  if (o.delete) {
    await api.delete(ref);
    return `federatedtypeconfig ${o.type} deleted (propagation stops; the Federated CRD and its objects stay)`;
  }
  await api.replace({ ...ftc, spec: { ...ftc.spec, propagation: 'Disabled' } });
  return `federatedtypeconfig ${o.type}: propagation Disabled`;
}

async function main(): Promise<number> {
  const o = parseOrExit('fedctl', FEDCTL_HELP, parseFedctlOptions);
  try {
    const kc = loadConfig(o);
    const out = o.command === 'join' ? await join(kc, o) : o.command === 'unjoin' ? await unjoin(kc, o) : o.command === 'enable' ? await enable(kc, o) : await disable(kc, o);
    process.stdout.write(`${out}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`fedctl ${o.command}: ${describe(err)}\n`);
    return 1;
  }
}

main().then((code) => process.exit(code));
