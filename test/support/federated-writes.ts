// Writes through the hub that a fault test must not lose: FederatedConfigMaps placed on every
// cluster, each acknowledged when kubectl apply exits 0, and the check that every acknowledged
// one is Propagated and present with its content on a member.
import { strict as assert } from 'node:assert';
import type { Federation } from './federation-harness.js';
import { getJson } from './processes.js';

export const SHOP_NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: types.kubefed.io/v1beta1\nkind: FederatedNamespace\nmetadata: {name: shop, namespace: shop}\nspec: {placement: {clusterSelector: {}}}\n';

export class FederatedWrites {
  /** name → value of every acknowledged FederatedConfigMap. */
  readonly acked = new Map<string, string>();
  private next = 0;

  constructor(
    private readonly fed: Federation,
    private readonly prefix = 'cm',
  ) {}

  /** Applies the shop namespace (federated to every cluster). */
  async setup(): Promise<void> {
    const r = await this.fed.kubectl('federation', ['apply', '-f', '-'], SHOP_NAMESPACE);
    assert.equal(r.code, 0, r.stderr);
  }

  /** One FederatedConfigMap; the hub must acknowledge it whatever state the members are in. */
  async createOne(): Promise<void> {
    const name = `${this.prefix}-${this.next++}`;
    const value = `${name}-${Date.now()}`;
    const r = await this.fed.kubectl('federation', ['apply', '-f', '-'], `apiVersion: types.kubefed.io/v1beta1\nkind: FederatedConfigMap\nmetadata: {name: ${name}, namespace: shop}\nspec:\n  template: {data: {value: "${value}"}}\n  placement: {clusterSelector: {}}\n`);
    assert.equal(r.code, 0, `the hub refused a write: ${r.stderr}`);
    this.acked.set(name, value);
  }

  /** Every acknowledged object Propagated (kubectl wait, a watch) and on `member` with its content. */
  async converged(member: string): Promise<void> {
    const wait = await this.fed.kubectl('federation', ['wait', '--for=condition=Propagation', '--timeout=90s', '-n', 'shop', '--all', 'federatedconfigmaps']);
    assert.equal(wait.code, 0, wait.stderr);
    const got = await this.fed.kubectlMember(member, ['get', 'configmaps', '-n', 'shop', '-l', 'kubefed.io/managed=true', '-o', 'json']);
    assert.equal(got.code, 0, got.stderr);
    const present = new Map<string, string>((JSON.parse(got.stdout) as { items: Array<{ metadata: { name: string }; data: { value: string } }> }).items.map((o) => [o.metadata.name, o.data.value]));
    for (const [name, value] of this.acked) assert.equal(present.get(name), value, `acknowledged ${name} not on ${member} with its content`);
  }

  /**
   * The hub's pending dials drain to 0 within a bound. The controller dials members at any moment
   * (health checks, its watches), so "back to 0" cannot mean "0 at this instant".
   */
  async assertHubSettled(member: string): Promise<void> {
    const state = async (): Promise<{ agents: Array<{ cluster: string }>; pendingDials: number }> =>
      // Not fetch(): its keep-alive pool would hold a connection to the hub past the test.
      (await getJson(this.fed.hub.ports.adminPort, '/debug/agents')) as { agents: Array<{ cluster: string }>; pendingDials: number };
    let s = await state();
    assert.deepEqual(s.agents.map((a) => a.cluster), [member], 'the member\'s agent is registered');
    for (const started = Date.now(); s.pendingDials > 0 && Date.now() - started < 10_000; s = await state()) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(s.pendingDials, 0, 'dials left pending on the hub');
  }
}
