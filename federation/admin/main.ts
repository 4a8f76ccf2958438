#!/usr/bin/env node
// fedctl: joins member clusters to the federation and federates types, the way kubefedctl does,
// by writing KubeFed objects to the federation API server (it never talks to members itself:
// the hub reaches them through their agents). Exit codes: 0 done, 1 the API refused or timed
// out (its message is printed), 2 bad invocation.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { AuthorizationV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { parseOrExit } from '../../common/flags.js';
import { writeFileAtomically } from '../../certs/pki.js';
import { CORE_GROUP, federatedTypeConfigFor, KUBEFED_VERSION, parseTargetTypeName, UNJOIN_FINALIZER, type TargetType } from '../kubefed/api.js';
import { effectiveGroups } from '../apiserver/rbac.js';
import { FEDCTL_HELP, parseFedctlOptions, type CredentialFlags, type FedctlOptions } from './options.js';
import { buildUserKubeconfig, REACH, tenantExclusion, type ClusterCandidate, type UserCredential } from './user-kubeconfig.js';

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

/** The credential as it goes into the kubeconfig; a certificate must be the user's (CN = --user), and its O are the groups. */
function loadCredential(flags: CredentialFlags, user: string, groups: string[]): { credential: UserCredential; groups: string[] } {
  switch (flags.kind) {
    case 'certificate': {
      const cert = readFile('--client-certificate', flags.certFile);
      const key = readFile('--client-key', flags.keyFile);
      let subject: string;
      try {
        subject = new X509Certificate(cert).subject;
      } catch (err) {
        throw new CommandError(`--client-certificate ${flags.certFile}: not a PEM certificate (${(err as Error).message})`);
      }
      const attrs = subject.split('\n').map((l) => l.split('=')) as Array<[string, string]>;
      const cn = attrs.find(([k]) => k === 'CN')?.[1];
      const certGroups = attrs.filter(([k]) => k === 'O').map(([, v]) => v);
      if (cn !== user) throw new CommandError(`--client-certificate: its user (CN) is ${JSON.stringify(cn ?? '')}, not --user ${JSON.stringify(user)}`);
      // The hub sees the certificate's groups, nothing else: --group may only repeat them.
      if (groups.length > 0 && [...new Set(groups)].sort().join('\n') !== [...new Set(certGroups)].sort().join('\n')) {
        throw new CommandError(`--group ${groups.join(', ')}: the certificate's groups (O) are ${certGroups.join(', ') || 'none'}; the hub sees those`);
      }
      return { credential: { kind: 'certificate', cert, key }, groups: certGroups };
    }
    case 'token':
      return { credential: { kind: 'token', token: flags.token }, groups };
    case 'token-file': {
      const token = readFile('--token-file', flags.tokenFile).toString('utf8').trim();
      if (token === '' || /\s/.test(token)) throw new CommandError(`--token-file ${flags.tokenFile}: expected one token (no whitespace)`);
      return { credential: { kind: 'token', token }, groups };
    }
    case 'oidc':
      return { credential: flags, groups };
  }
}

/**
 * A user's kubeconfig for the hub's /clusters proxy: the KubeFedClusters the user may reach (tenant
 * rule, then a SubjectAccessReview each), written to -o (0600, atomically) or stdout.
 */
async function userKubeconfig(kc: KubeConfig, o: Extract<FedctlOptions, { command: 'kubeconfig' }>): Promise<string> {
  const ca = readFile('--ca', o.caFile);
  const { credential, groups } = loadCredential(o.credential, o.user, o.groups);
  const listed = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: CORE_GROUP, version: KUBEFED_VERSION, namespace: o.namespace, plural: 'kubefedclusters' })) as { items?: Array<{ metadata?: { name?: string; labels?: Record<string, string> } }> };
  const candidates: ClusterCandidate[] = (listed.items ?? []).map((c) => ({ name: c.metadata?.name ?? '', labels: c.metadata?.labels ?? {} })).filter((c) => c.name !== '').sort((a, b) => a.name.localeCompare(b.name));
  if (candidates.length === 0) throw new CommandError(`no KubeFedClusters in ${o.namespace}: join clusters first`);
  // As the hub will see the user: system:authenticated (and service-account groups) added.
  const asHub = effectiveGroups(o.user, groups);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const reachable: string[] = [];
  const skipped: string[] = [];
  for (const c of candidates) {
    const excluded = tenantExclusion(asHub, c);
    if (excluded) {
      skipped.push(excluded);
      continue;
    }
    const review = await authz.createSubjectAccessReview({
      body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: o.user, groups: asHub, resourceAttributes: { verb: REACH.verb, group: REACH.group, resource: REACH.resource, name: c.name } } },
    });
    if (review.status?.allowed) reachable.push(c.name);
    else skipped.push(`cluster ${c.name}: no RBAC ${REACH.verb} on ${REACH.resource}.${REACH.group} for user ${o.user}`);
  }
  if (reachable.length === 0) throw new CommandError(`user ${o.user} may reach none of the ${candidates.length} clusters:\n  ${skipped.join('\n  ')}`);
  const yaml = buildUserKubeconfig({ user: o.user, hub: o.hub, ca, credential, clusters: reachable });
  const summary = `contexts: ${reachable.join(', ')} (current: ${reachable[0]})${skipped.length ? `; skipped ${skipped.length}: ${candidates.filter((c) => !reachable.includes(c.name)).map((c) => c.name).join(', ')}` : ''}`;
  if (o.output === null) {
    process.stdout.write(yaml);
    process.stderr.write(`${summary}\n`);
    return '';
  }
  try {
    writeFileAtomically(o.output, yaml, 0o600);
  } catch (err) {
    throw new CommandError(`-o ${o.output}: ${(err as Error).message}`);
  }
  return `kubeconfig for ${o.user} written to ${o.output}: ${summary}`;
}

async function main(): Promise<number> {
  const o = parseOrExit('fedctl', FEDCTL_HELP, parseFedctlOptions);
  try {
    const kc = loadConfig(o);
    const out =
      o.command === 'join' ? await join(kc, o) : o.command === 'unjoin' ? await unjoin(kc, o) : o.command === 'enable' ? await enable(kc, o) : o.command === 'disable' ? await disable(kc, o) : await userKubeconfig(kc, o);
    if (out !== '') process.stdout.write(`${out}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`fedctl ${o.command}: ${describe(err)}\n`);
    return 1;
  }
}

main().then((code) => process.exit(code));
