// pip-services, when the application has it installed. memlock does not depend on pip-services:
// a pip-services application already has its packages, and memlock then hands out their
// exception classes and finds discovery services with their Descriptor (pip-services'
// `Reference.match` compares locators with `instanceof Descriptor`, so a look-alike never
// matches). Packages are looked up from memlock's own location, as Node resolves a peer
// dependency: version 4 first (the seed's), then version 3.
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/** The package, or null when it is not installed; any other failure to load it is thrown. */
export function optional(name, require = requireHere) {
  try {
    return require(name);
  } catch (e) {
    if (e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') return null;
    throw e;
  }
}

/** A locator shaped like pip-services' Descriptor, for references that match by its getters. */
const lookalike = (group, type, kind, name, version) =>
  Object.freeze({
    getGroup: () => group,
    getType: () => type,
    getKind: () => kind,
    getName: () => name,
    getVersion: () => version,
    toString: () => [group, type, kind, name, version].join(':'),
  });

/** Locators for `group:type:kind:name:version`: one Descriptor per installed pip-services
 * version, then the look-alike (an application's own IReferences). */
export function locators(group, type, kind, name, version, require = requireHere) {
  const found = [];
  for (const pkg of ['pip-services4-components-node', 'pip-services3-commons-node']) {
    const Descriptor = optional(pkg, require)?.Descriptor;
    if (typeof Descriptor === 'function') found.push(new Descriptor(group, type, kind, name, version));
  }
  found.push(lookalike(group, type, kind, name, version));
  return found;
}
