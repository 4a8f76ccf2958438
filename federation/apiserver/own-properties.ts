// Object keys from request bodies are data: "__proto__", "constructor" and the other names of
// Object.prototype must be stored and read as ordinary own properties.

/**
 * Sets `key` as an own data property. Plain assignment of "__proto__" (a valid key in JSON, e.g. in a
 * ConfigMap's data) would replace the object's prototype instead, and the key would be lost.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The value of an own property: never one inherited from Object.prototype ("constructor", "__proto__"). */
export function getOwn(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}
