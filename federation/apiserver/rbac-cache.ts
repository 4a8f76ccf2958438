// The RBAC objects in memory, fed by the store's watch (list + watch, one informer per type), so
// every request is decided against memory, never by a query. A change to a binding takes effect
// as soon as its watch event arrives, in this process and in every replica sharing the store.
import type { Logger } from '../../common/log.js';
import { Informer } from '../controller/informer.js';
import { localListWatch } from '../controller/sources.js';
import { Policy, type Attributes, type Authorizer, type Binding, type Decision, type PolicyRule, type Role, type RoleRef } from './rbac.js';
import { CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, toBinding, toRole } from './rbac-api.js';
import type { Resources } from './resources.js';
import type { KubeObject } from './storage.js';

export class RbacCache implements Authorizer {
  private readonly roles: Informer[];
  private readonly bindings: Informer[];
  private policy: Policy = new Policy([], []);
  /** Set by every event: the Policy is rebuilt on the next decision, once for a burst of changes. */
  private stale = true;
  private readonly synced: Promise<void>;

  constructor(resources: Resources, private readonly log: Logger) {
    let pending = 4;
    let resolveSynced!: () => void;
    this.synced = new Promise((resolve) => (resolveSynced = resolve));
    const handlers = (kind: string) => ({
      added: () => void (this.stale = true),
      updated: () => void (this.stale = true),
      deleted: () => void (this.stale = true),
      synced: () => {
        if (--pending === 0) resolveSynced();
      },
      failed: (err: Error) => this.log.warn({ kind, err: err.message }, 'rbac: list/watch failed; retrying'),
    });
    const informer = (t: typeof ROLES) => new Informer(localListWatch(resources, t), handlers(t.kind));
    this.roles = [informer(CLUSTER_ROLES), informer(ROLES)];
    this.bindings = [informer(CLUSTER_ROLE_BINDINGS), informer(ROLE_BINDINGS)];
  }

  /** Lists and watches; resolves once every type is listed (until then only system:masters is allowed). */
  start(): Promise<void> {
    for (const i of [...this.roles, ...this.bindings]) i.start();
    return this.synced;
  }

  stop(): void {
    for (const i of [...this.roles, ...this.bindings]) i.stop();
  }

  authorize(attrs: Attributes): Decision {
    return this.current().authorize(attrs);
  }

  rulesFor(user: string, groups: readonly string[], namespace: string): PolicyRule[] {
    return this.current().rulesFor(user, groups, namespace);
  }

  roleRules(ref: RoleRef, bindingNamespace: string | undefined): PolicyRule[] | undefined {
    return this.current().roleRules(ref, bindingNamespace);
  }

  private current(): Policy {
    if (!this.stale) return this.policy;
    this.stale = false;
    const roles = this.convert(this.roles, toRole);
    const bindings = this.convert(this.bindings, toBinding);
    this.policy = new Policy(roles, bindings);
    return this.policy;
  }

  /** Stored objects were validated on write; one that still does not convert is skipped (and said so), not fatal. */
  private convert<T extends Role | Binding>(informers: Informer[], to: (obj: KubeObject) => T): T[] {
    const out: T[] = [];
    for (const informer of informers) {
      for (const obj of informer.list()) {
        try {
          out.push(to(obj));
        } catch (err) {
          this.log.warn({ kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, err: (err as Error).message }, 'rbac: object ignored');
        }
      }
    }
    return out;
  }
}
