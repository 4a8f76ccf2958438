// deploy/kubernetes: every base and overlay rendered by real `kubectl kustomize` (offline), each
// object validated against the Kubernetes OpenAPI schemas (kubernetes-models), and the manifests
// checked against the binaries they run: the image the Dockerfile builds, flags that exist in each
// bin's --help, the bins' default ports, probes on the real health endpoints, hardened pods, and
// the RBAC and NetworkPolicy the README promises.
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { parseEncryptionConfig } from '../../federation/encryption/config.js';
import { toBinding, toRole } from '../../federation/apiserver/rbac-api.js';
import { effectiveGroups, Policy, type ResourceAttributes } from '../../federation/apiserver/rbac.js';
import type { KubeObject as StoredObject } from '../../federation/apiserver/storage.js';
import {
  allContainers, flagsOfArgs, flagsOfHelp, helpOf, intendedImage, kustomizations, modelOf, packageBins, podOwners, portOf, render, selects,
  type Container, type HelpFlag, type KubeObject, type PodSpec,
} from '../support/manifests.js';

/** The port each listen flag binds by default, from --help; --federation-listen is off by default and takes the API server's. */
function defaultPorts(helps: Map<string, Map<string, HelpFlag>>): Map<string, number> {
  const ports = new Map<string, number>();
  for (const [bin, flags] of helps) {
    for (const { flag, fallback } of flags.values()) {
      if (flag.endsWith('-listen') && fallback && /:\d+$/.test(fallback)) ports.set(`${bin} ${flag}`, portOf(fallback));
    }
  }
  return ports;
}

/** The labels the pods of an owner carry once running: a StatefulSet adds each pod's name. */
function podLabelSets(owner: ReturnType<typeof podOwners>[number]): Array<Record<string, string>> {
  if (owner.object.kind !== 'StatefulSet') return [owner.labels];
  const replicas = (owner.object.spec as { replicas?: number }).replicas ?? 1;
  return Array.from({ length: replicas }, (_, i) => ({ ...owner.labels, 'statefulset.kubernetes.io/pod-name': `${owner.object.metadata.name}-${i}` }));
}

function bins(): Set<string> {
  return new Set(Object.keys(packageBins()));
}

/** Containers that run one of our bins (args[0] names it: the image's entrypoint dispatches on it). */
function fedtunnelContainers(spec: PodSpec): Container[] {
  return allContainers(spec).filter((c) => bins().has(c.args?.[0] ?? ''));
}

describe('deploy/kubernetes (kustomize renders, OpenAPI schemas, flags and ports of the binaries)', function () {
  this.timeout(120_000);
  const renders = new Map<string, KubeObject[]>();
  const helps = new Map<string, Map<string, HelpFlag>>();

  before(async function () {
    for (const k of kustomizations()) renders.set(k, await render(k));
    for (const bin of bins()) helps.set(bin, flagsOfHelp(await helpOf(bin)));
  });

  const every = (): Array<[string, KubeObject]> => [...renders].flatMap(([k, objects]) => objects.map((o): [string, KubeObject] => [k, o]));

  it('renders every base and overlay offline', function () {
    assert.deepEqual([...renders.keys()], ['base/agent', 'base/hub', 'overlays/agent', 'overlays/hub-ha']);
    for (const [k, objects] of renders) assert.ok(objects.length >= 5, `${k} renders ${objects.length} objects`);
  });

  it('every object is valid against the Kubernetes OpenAPI schema of its kind', async function () {
    for (const [k, object] of every()) {
      const Model = await modelOf(object);
      assert.ok(Model, `${k}: no Kubernetes schema for ${object.apiVersion} ${object.kind}`);
      assert.doesNotThrow(() => new Model(object).validate(), `${k}: ${object.kind}/${object.metadata.name}`);
    }
  });

  it('the schema check refuses a broken object (the validation is live)', async function () {
    const statefulSet = renders.get('overlays/hub-ha')!.find((o) => o.kind === 'StatefulSet')!;
    const broken = structuredClone(statefulSet) as unknown as { spec: { template: { spec: PodSpec } } };
    (broken.spec.template.spec.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = 'agents';
    const Model = (await modelOf(statefulSet))!;
    assert.throws(() => new Model(broken).validate(), /containerPort must be integer/);
  });

  it('every fedtunnel container runs the image the Dockerfile builds; the only other one is the KMS plugin placeholder', function () {
    const image = intendedImage();
    assert.match(image, /^fedtunnel:\d+\.\d+\.\d+$/);
    for (const [k, objects] of renders) {
      for (const owner of podOwners(objects)) {
        for (const container of allContainers(owner.spec)) {
          if (bins().has(container.args?.[0] ?? '')) assert.equal(container.image, image, `${k}: ${container.name}`);
          else assert.equal(container.name, 'kms-plugin', `${k}: ${container.name} runs no fedtunnel bin`);
        }
      }
    }
  });

  it("every --flag in args exists in that bin's --help, and every listener binds the bin's default port", function () {
    const ports = defaultPorts(helps);
    const apiserverPort = 6443; // dist/federation/apiserver --listen's default; the hub's embedded one has none
    let checked = 0;
    for (const [k, objects] of renders) {
      for (const owner of podOwners(objects)) {
        for (const container of fedtunnelContainers(owner.spec)) {
          const [bin, ...args] = container.args!;
          const known = helps.get(bin!)!;
          for (const { flag, value } of flagsOfArgs(args)) {
            assert.ok(known.has(flag), `${k}: ${bin} has no ${flag} (not in its --help)`);
            checked++;
            if (!flag.endsWith('-listen') || value === null) continue;
            const expected = flag === '--federation-listen' ? apiserverPort : ports.get(`${bin} ${flag}`);
            assert.equal(portOf(value), expected, `${k}: ${bin} ${flag} ${value}`);
            assert.ok(value.startsWith('0.0.0.0:'), `${k}: ${flag} must listen on the pod network`);
            assert.ok(container.ports?.some((p) => p.containerPort === expected), `${k}: ${container.name} declares no containerPort ${expected}`);
          }
          assert.ok(container.ports?.every((p) => args.some((a) => a.endsWith(`:${p.containerPort}`))), `${k}: ${container.name} declares a port nothing listens on`);
        }
      }
    }
    assert.ok(checked >= 20, `only ${checked} flags checked`);
  });

  it('every Service selects pods of the same render and targets a port they declare', function () {
    for (const [k, objects] of renders) {
      const owners = podOwners(objects);
      for (const service of objects.filter((o) => o.kind === 'Service')) {
        const spec = service.spec as { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string | number }> };
        const matching = owners.filter((owner) => podLabelSets(owner).some((labels) => selects(spec.selector, labels)));
        assert.ok(matching.length > 0, `${k}: Service ${service.metadata.name} selects no pod`);
        for (const port of spec.ports) {
          for (const owner of matching) {
            const declared = owner.spec.containers.flatMap((c) => c.ports ?? []);
            const target = declared.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort);
            assert.ok(target, `${k}: Service ${service.metadata.name} targets ${port.targetPort}, not a port of ${owner.object.metadata.name}`);
            assert.equal(port.port, target.containerPort, `${k}: ${service.metadata.name} exposes the bin's own port number`);
          }
        }
      }
    }
  });

  it('pods run as non-root with a read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp', function () {
    for (const [k, objects] of renders) {
      for (const { object, spec } of podOwners(objects)) {
        const pod = spec.securityContext as { runAsNonRoot: boolean; runAsUser: number; seccompProfile: { type: string } };
        assert.equal(pod.runAsNonRoot, true, `${k}: ${object.metadata.name}`);
        assert.equal(pod.runAsUser, 10001, `${k}: ${object.metadata.name} runs as the image's user`);
        assert.equal(pod.seccompProfile.type, 'RuntimeDefault');
        assert.equal(spec.automountServiceAccountToken, false, `${k}: ${object.metadata.name} mounts no API token`);
        for (const container of allContainers(spec)) {
          assert.deepEqual(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } }, `${k}: ${container.name}`);
        }
        for (const volume of spec.volumes ?? []) {
          const mode = volume.secret?.defaultMode ?? volume.configMap?.defaultMode;
          if (volume.secret) assert.equal(mode, 0o400, `${k}: Secret volume ${volume.name}`);
          if (volume.configMap) assert.equal((mode ?? 0o644) & 0o007, 0, `${k}: ConfigMap volume ${volume.name} is not world-readable`);
        }
        // SIGTERM drains for up to --drain-timeout (30 s default) before the kill.
        assert.ok((spec.terminationGracePeriodSeconds ?? 30) > 30, `${k}: ${object.metadata.name} grace period`);
      }
    }
  });

  it("readiness probes /readyz and liveness /healthz on the bin's admin or health listener", function () {
    for (const [k, objects] of renders) {
      for (const { spec } of podOwners(objects)) {
        for (const container of fedtunnelContainers(spec)) {
          const listen = flagsOfArgs(container.args!).find((f) => f.flag === '--admin-listen' || f.flag === '--health-listen');
          assert.ok(listen?.value, `${k}: ${container.name} has no admin or health listener`);
          const port = container.ports!.find((p) => p.containerPort === portOf(listen.value!))!;
          assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: port.name }, `${k}: ${container.name} readiness`);
          assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: port.name }, `${k}: ${container.name} liveness`);
        }
      }
    }
  });

  describe('overlays/hub-ha', function () {
    const objects = (): KubeObject[] => renders.get('overlays/hub-ha')!;
    const hub = (): ReturnType<typeof podOwners>[number] => podOwners(objects()).find((o) => o.object.metadata.name === 'fedtunnel-hub')!;

    it('three replicas, each with its own agent Service, and a PodDisruptionBudget of one', function () {
      const owner = hub();
      assert.equal(owner.object.kind, 'StatefulSet');
      assert.equal((owner.object.spec as { replicas: number }).replicas, 3);
      const perReplica = objects().filter((o) => o.kind === 'Service' && /^fedtunnel-hub-\d$/.test(o.metadata.name));
      assert.deepEqual(
        perReplica.map((s) => (s.spec as { selector: Record<string, string> }).selector['statefulset.kubernetes.io/pod-name']).sort(),
        ['fedtunnel-hub-0', 'fedtunnel-hub-1', 'fedtunnel-hub-2'],
      );
      for (const service of perReplica) assert.equal((service.spec as { type: string }).type, 'LoadBalancer');
      const pdb = objects().find((o) => o.kind === 'PodDisruptionBudget')!;
      const pdbSpec = pdb.spec as { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
      assert.equal(pdbSpec.maxUnavailable, 1);
      assert.ok(selects(pdbSpec.selector.matchLabels, owner.labels));
      assert.equal(pdb.metadata.namespace, owner.object.metadata.namespace);
    });

    it('the MySQL URL comes from a Secret, by $(VAR) expansion in args (the flags have no env form)', function () {
      const container = hub().spec.containers.find((c) => c.name === 'proxy-server')!;
      const store = flagsOfArgs(container.args!).find((f) => f.flag === '--federation-store')!;
      assert.equal(store.value, '$(FEDERATION_STORE)');
      const env = container.env!.find((e) => e.name === 'FEDERATION_STORE')!;
      assert.deepEqual(env.valueFrom, { secretKeyRef: { name: 'fedtunnel-hub-store', key: 'url' } });
      assert.ok(!JSON.stringify(objects()).includes('mysql://'), 'no store URL in the manifests');
    });

    it('the EncryptionConfiguration parses with the hub\'s own parser and points at the KMS plugin\'s socket, shared with the sidecar', function () {
      const configMap = objects().find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'fedtunnel-hub-encryption')!;
      const config = parseEncryptionConfig((configMap.data as Record<string, string>)['encryption.yaml']!);
      assert.equal(config.rules.length, 1);
      const [provider, ...others] = config.rules[0]!.providers;
      assert.equal(others.length, 0, 'only the KMS provider: no identity fallback');
      assert.equal(provider!.type, 'kms');
      const socket = (provider as { endpoint: string }).endpoint.replace(/^unix:\/\//, '');
      const { spec } = hub();
      const proxy = spec.containers.find((c) => c.name === 'proxy-server')!;
      const plugin = spec.initContainers!.find((c) => c.name === 'kms-plugin')!;
      assert.equal(plugin.restartPolicy, 'Always', 'a native sidecar: up before the hub, down after it');
      const mountOf = (c: Container): { name: string; mountPath: string } => c.volumeMounts!.find((m) => m.mountPath === path.dirname(socket))!;
      assert.ok(mountOf(proxy) && mountOf(plugin), `both mount ${path.dirname(socket)}`);
      assert.equal(mountOf(proxy).name, mountOf(plugin).name);
      assert.ok(spec.volumes!.find((v) => v.name === mountOf(proxy).name)!.emptyDir);
      const configFlag = flagsOfArgs(proxy.args!).find((f) => f.flag === '--federation-encryption-config')!;
      const configMount = proxy.volumeMounts!.find((m) => configFlag.value!.startsWith(`${m.mountPath}/`))!;
      assert.equal(spec.volumes!.find((v) => v.name === configMount.name)!.configMap!.name, 'fedtunnel-hub-encryption');
    });
  });

  describe('overlays/agent', function () {
    const objects = (): KubeObject[] => renders.get('overlays/agent')!;

    it('two agents; their ServiceAccount is bound to nothing (the agent only dials)', function () {
      const [agent] = podOwners(objects());
      assert.equal(agent!.object.kind, 'Deployment');
      assert.equal((agent!.object.spec as { replicas: number }).replicas, 2);
      const bindings = objects().filter((o) => o.kind.endsWith('Binding'));
      const subjects = bindings.flatMap((b) => (b as unknown as { subjects: Array<{ name: string }> }).subjects.map((s) => s.name));
      assert.ok(!subjects.includes(agent!.spec.serviceAccountName!), 'no RBAC for the agent');
    });

    it('NetworkPolicy: no ingress; egress only to DNS, the hub\'s agent port and the API server', function () {
      const policy = objects().find((o) => o.kind === 'NetworkPolicy')!;
      const spec = policy.spec as {
        podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: unknown[];
        egress: Array<{ to: Array<{ ipBlock?: { cidr: string }; podSelector?: { matchLabels: Record<string, string> } }>; ports: Array<{ port: number; protocol: string }> }>;
      };
      assert.ok(selects(spec.podSelector.matchLabels, podOwners(objects())[0]!.labels));
      assert.deepEqual(spec.policyTypes, ['Ingress', 'Egress']);
      assert.deepEqual(spec.ingress, []);
      assert.equal(spec.egress.length, 3);
      const [dns, hubRule, apiserver] = spec.egress;
      assert.deepEqual(dns!.to[0]!.podSelector!.matchLabels, { 'k8s-app': 'kube-dns' });
      assert.deepEqual(dns!.ports.map((p) => p.port), [53, 53]);
      const agentPort = portOf((helps.get('proxy-server')!.get('--agent-listen')!.fallback)!);
      assert.deepEqual(hubRule!.ports, [{ protocol: 'TCP', port: agentPort }]);
      assert.equal(hubRule!.to[0]!.ipBlock!.cidr, '198.51.100.16/29', 'the overlay sets the hub addresses');
      assert.equal(apiserver!.to[0]!.ipBlock!.cidr, '10.0.0.10/32', 'the overlay sets the API server endpoints');
      for (const rule of spec.egress) for (const to of rule.to) assert.ok(to.ipBlock?.cidr !== '0.0.0.0/0', 'no egress to everywhere');
    });

    it("the hub's credential may only impersonate users and the listed groups: not system:masters, not service accounts", function () {
      const role = objects().find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'fedtunnel-hub-impersonator')!;
      const rules = (role as unknown as { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }> }).rules;
      for (const rule of rules) {
        assert.deepEqual(rule.verbs, ['impersonate'], 'no verb but impersonate');
        assert.deepEqual(rule.apiGroups, ['']);
      }
      assert.deepEqual(rules.flatMap((r) => r.resources).sort(), ['groups', 'users']);
      const groups = rules.find((r) => r.resources.includes('groups'))!;
      assert.ok(groups.resourceNames && groups.resourceNames.length > 0, 'groups are listed by name');
      assert.ok(!groups.resourceNames.includes('system:masters'));
      const binding = objects().find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'fedtunnel-hub-impersonator') as unknown as {
        roleRef: { name: string }; subjects: Array<{ kind: string; name: string; namespace: string }>;
      };
      assert.equal(binding.roleRef.name, role.metadata.name);
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'fedtunnel-hub', namespace: 'fedtunnel-system' }]);
      const token = objects().find((o) => o.kind === 'Secret' && o.metadata.name === 'fedtunnel-hub-token')!;
      assert.equal(token.type, 'kubernetes.io/service-account-token');
      assert.equal(token.metadata.annotations!['kubernetes.io/service-account.name'], 'fedtunnel-hub');
    });

    it("evaluated as RBAC does (the federation's kube-compatible evaluator), the hub's ServiceAccount may impersonate exactly what the README says", function () {
      const decide = (kustomization: string, request: Omit<ResourceAttributes, 'user' | 'groups'>): boolean => {
        const objects = renders.get(kustomization)! as unknown as StoredObject[];
        const policy = new Policy(objects.filter((o) => o.kind === 'ClusterRole').map(toRole), objects.filter((o) => o.kind === 'ClusterRoleBinding').map(toBinding));
        const user = 'system:serviceaccount:fedtunnel-system:fedtunnel-hub';
        return policy.authorize({ user, groups: effectiveGroups(user, []), ...request }).allowed;
      };
      const impersonate = (resource: string, name: string, extra: Partial<ResourceAttributes> = {}): Omit<ResourceAttributes, 'user' | 'groups'> =>
        ({ verb: 'impersonate', apiGroup: '', resource, name, ...extra });
      for (const k of ['overlays/agent', 'base/agent']) {
        assert.ok(decide(k, impersonate('users', 'alice')), `${k}: any user`);
        assert.ok(decide(k, impersonate('groups', 'system:authenticated')), k);
        assert.ok(!decide(k, impersonate('groups', 'system:masters')), `${k}: never system:masters`);
        assert.ok(!decide(k, impersonate('serviceaccounts', 'default', { namespace: 'kube-system' })), `${k}: no service accounts`);
        assert.ok(!decide(k, impersonate('uids', '1234', { apiGroup: 'authentication.k8s.io' })), `${k}: no uids`);
        assert.ok(!decide(k, impersonate('userextras', 'scopes', { apiGroup: 'authentication.k8s.io' })), `${k}: no extras`);
        for (const verb of ['get', 'list', 'create', 'delete']) assert.ok(!decide(k, { verb, apiGroup: '', resource: 'secrets', namespace: 'default' }), `${k}: no ${verb} as itself`);
      }
      assert.ok(decide('overlays/agent', impersonate('groups', 'demo-viewers')), 'the overlay lists its groups');
      assert.ok(!decide('base/agent', impersonate('groups', 'demo-viewers')), 'the base lists none of the hub\'s groups');
    });

    it('the hub address comes from the overlay\'s ConfigMap', function () {
      const [agent] = podOwners(objects());
      const container = agent!.spec.containers[0]!;
      assert.equal(flagsOfArgs(container.args!).find((f) => f.flag === '--server')!.value, '$(HUB_ADDRESS)');
      const ref = container.env!.find((e) => e.name === 'HUB_ADDRESS')!.valueFrom!.configMapKeyRef!;
      const configMap = objects().find((o) => o.kind === 'ConfigMap' && o.metadata.name === ref.name)!;
      assert.equal((configMap.data as Record<string, string>)[ref.key!], 'hub.fedtunnel.example.com:8091');
    });
  });
});
