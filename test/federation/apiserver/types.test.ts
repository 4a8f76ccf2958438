// The type registry's change notification: the controller starts a federated type when its CRD's
// types are registered, not when the CRD's watch event arrives (which may come first).
import { strict as assert } from 'node:assert';
import { NAMESPACES, SECRETS, TypeRegistry } from '../../../federation/apiserver/types.js';

describe('federation/apiserver: TypeRegistry.onChange', function () {
  it('calls back after each add and each removal that removed something, until unsubscribed', function () {
    const registry = new TypeRegistry();
    const seen: string[][] = [];
    const unsubscribe = registry.onChange(() => seen.push(registry.all().map((t) => t.plural)));
    registry.add(NAMESPACES);
    registry.add(SECRETS);
    registry.removeWhere((t) => t.plural === 'configmaps');
    registry.removeWhere((t) => t.plural === 'secrets');
    assert.deepEqual(seen, [['namespaces'], ['namespaces', 'secrets'], ['namespaces']], 'the type is served when the listener runs; a removal of nothing is no change');
    unsubscribe();
    registry.add(SECRETS);
    assert.equal(seen.length, 3);
  });
});
