// Custom resource versions: which version objects of a served type are stored as, and conversion
// between versions (strategy None, or the CRD's webhook through a Converter). One place, so the
// object API (Resources) and watches (object-watch) convert the same way, and watch events are
// converted once per event and version however many watchers there are.
import { errors } from './errors.js';
import type { Converter } from './conversion.js';
import type { KubeObject } from './storage.js';
import { groupVersion, type ResourceType } from './types.js';

const SHARED_CONVERSIONS = 4096;

export class VersionConverter {
  /** Converts through webhooks; without one, only strategy None works. */
  converter: Converter | undefined;
  /** Recent conversions of watch events by "<version>|<key>@<revision>". */
  private readonly shared = new Map<string, Promise<KubeObject>>();

  /** The type objects of `t` are stored as (itself unless a non-storage version of a CRD). */
  storageType(t: ResourceType): ResourceType {
    if (!t.crd || t.version === t.crd.storageVersion) return t;
    return { ...t, version: t.crd.storageVersion };
  }

  /** Objects (any stored version) converted to the version of `t`. */
  async convertTo(t: ResourceType, objs: KubeObject[]): Promise<KubeObject[]> {
    if (!t.crd) return objs;
    const desired = groupVersion(t);
    if (objs.every((o) => o.apiVersion === desired)) return objs;
    if (!this.converter) {
      if (t.crd.conversion.strategy !== 'None') throw errors.internal(`no converter for ${t.crd.name}`);
      return objs.map((o) => (o.apiVersion === desired ? o : { ...o, apiVersion: desired }));
    }
    const out = await this.converter.convert(t.crd, objs, desired);
    // Conversion never changes resourceVersion (it is not part of the converted payload's identity).
    return out.map((o, i) => ({ ...o, metadata: { ...o.metadata, resourceVersion: objs[i]!.metadata.resourceVersion } }));
  }

  async convertOne(t: ResourceType, obj: KubeObject): Promise<KubeObject> {
    return (await this.convertTo(t, [obj]))[0]!;
  }

  /**
   * convertOne for an immutable stored version identified by `id` (key and revision): every watcher
   * of the same version gets the same (read-only) result from one conversion.
   */
  convertShared(t: ResourceType, obj: KubeObject, id: string): Promise<KubeObject> {
    if (!t.crd || obj.apiVersion === groupVersion(t)) return Promise.resolve(obj);
    const memoKey = `${groupVersion(t)}|${id}`;
    let converted = this.shared.get(memoKey);
    if (!converted) {
      converted = this.convertOne(t, obj);
      this.shared.set(memoKey, converted);
      converted.catch(() => this.shared.delete(memoKey));
      // Watchers convert an event within moments of each other: a short memory is enough.
      if (this.shared.size > SHARED_CONVERSIONS) this.shared.delete(this.shared.keys().next().value!);
    }
    return converted;
  }
}
