// Table output (meta.k8s.io/v1 Table) for `kubectl get`: NAME and AGE columns, plus a few per-kind ones.
import type { KubeObject } from './storage.js';
import type { ResourceType } from './types.js';

export interface TableColumn {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string };
  columnDefinitions: TableColumn[];
  rows: Array<{ cells: unknown[]; object: unknown }>;
}

/** Whether an Accept header asks for a meta.k8s.io/v1 Table. */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return params.includes('as=Table') && params.includes('g=meta.k8s.io') && params.includes('v=v1');
  });
}

export function humanAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 > 0 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return `${h}h${m % 60 > 0 ? `${m % 60}m` : ''}`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return `${d}d${h % 24 > 0 ? `${h % 24}h` : ''}`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

interface ExtraColumn {
  column: TableColumn;
  cell(obj: KubeObject): unknown;
}

function col(name: string, type: string, description: string): TableColumn {
  return { name, type, format: '', description, priority: 0 };
}

/** kubectl's pod columns: READY (ready/all containers), STATUS (the phase), RESTARTS. */
function podStatuses(o: KubeObject): Array<{ ready?: boolean; restartCount?: number }> {
  return ((o.status as { containerStatuses?: Array<{ ready?: boolean; restartCount?: number }> } | undefined)?.containerStatuses) ?? [];
}

const EXTRA: Record<string, ExtraColumn[]> = {
  Pod: [
    { column: col('Ready', 'string', 'The number of ready containers'), cell: (o) => `${podStatuses(o).filter((s) => s.ready).length}/${((o.spec as { containers?: unknown[] } | undefined)?.containers ?? []).length}` },
    { column: col('Status', 'string', 'The phase of the pod'), cell: (o) => (o.status as { phase?: string } | undefined)?.phase ?? 'Pending' },
    { column: col('Restarts', 'integer', 'The number of container restarts'), cell: (o) => podStatuses(o).reduce((n, s) => n + (s.restartCount ?? 0), 0) },
  ],
  Namespace: [{ column: col('Status', 'string', 'The phase of the namespace'), cell: (o) => (o.status as { phase?: string } | undefined)?.phase ?? 'Active' }],
  ConfigMap: [{ column: col('Data', 'integer', 'Number of data entries'), cell: (o) => Object.keys((o.data as object) ?? {}).length + Object.keys((o.binaryData as object) ?? {}).length }],
  Secret: [
    { column: col('Type', 'string', 'Secret type'), cell: (o) => (o.type as string) ?? 'Opaque' },
    { column: col('Data', 'integer', 'Number of data entries'), cell: (o) => Object.keys((o.data as object) ?? {}).length },
  ],
  RoleBinding: [{ column: col('Role', 'string', 'Role of the binding'), cell: roleOf }],
  ClusterRoleBinding: [{ column: col('Role', 'string', 'ClusterRole of the binding'), cell: roleOf }],
};

/** kube's Role column of a binding: "ClusterRole/view". */
function roleOf(o: KubeObject): string {
  const ref = o.roleRef as { kind?: string; name?: string } | undefined;
  return `${ref?.kind ?? ''}/${ref?.name ?? ''}`;
}

export function toTable(t: ResourceType, objects: KubeObject[], opts: { resourceVersion?: string; continue?: string; includeObject?: string; now?: number }): Table {
  const now = opts.now ?? Date.now();
  const extra = EXTRA[t.kind] ?? [];
  const columnDefinitions: TableColumn[] = [
    { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
    ...extra.map((e) => e.column),
    col('Age', 'string', 'CreationTimestamp is a timestamp representing the server time when this object was created.'),
  ];
  const rows = objects.map((o) => {
    const created = o.metadata.creationTimestamp ? Date.parse(o.metadata.creationTimestamp) : now;
    const cells = [o.metadata.name ?? '', ...extra.map((e) => e.cell(o)), o.metadata.creationTimestamp ? humanAge(now - created) : '<unknown>'];
    const object =
      opts.includeObject === 'None'
        ? null
        : opts.includeObject === 'Object'
          ? o
          : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    return { cells, object };
  });
  const metadata: Table['metadata'] = {};
  if (opts.resourceVersion !== undefined) metadata.resourceVersion = opts.resourceVersion;
  if (opts.continue) metadata.continue = opts.continue;
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata, columnDefinitions, rows };
}
